//! f64 references of the layer's pieces, which every backend verifies its layer and decode
//! kernels against: RMSNorm forward and backward, SwiGLU forward and backward, one query's
//! attention over a set of keys and values. One copy, so the CPU, CUDA and Metal kernels are
//! held to the same definition (the epsilon included: [`crate::LayerShape::RMS_NORM_EPSILON`]).

/// `1 / sqrt(mean(x²) + ε)`: the factor RMSNorm scales a row by.
pub fn rms_norm_scale(row: &[f64], epsilon: f64) -> f64 {
    let mean_square = row.iter().map(|v| v * v).sum::<f64>() / row.len() as f64;
    1.0 / (mean_square + epsilon).sqrt()
}

/// `x / sqrt(mean(x²) + ε)`, the layer's normalisation without a gain.
pub fn rms_norm(row: &[f64], epsilon: f64) -> Vec<f64> {
    let r = rms_norm_scale(row, epsilon);
    row.iter().map(|v| v * r).collect()
}

/// Element `c` of the gradient of [`rms_norm`] with respect to its input, given the gradient
/// of its output: `dx = r·g − r³·x·(g·x)/n` with `r = 1/sqrt(mean(x²) + ε)`.
pub fn rms_norm_backward_at(row: &[f64], grad_output: &[f64], epsilon: f64, c: usize) -> f64 {
    let n = row.len() as f64;
    let r = rms_norm_scale(row, epsilon);
    let g_dot_x: f64 = grad_output.iter().zip(row).map(|(g, x)| g * x).sum();
    r * grad_output[c] - r * r * r * row[c] * g_dot_x / n
}

/// The whole gradient of [`rms_norm`]; see [`rms_norm_backward_at`].
pub fn rms_norm_backward(row: &[f64], grad_output: &[f64], epsilon: f64) -> Vec<f64> {
    let n = row.len() as f64;
    let r = rms_norm_scale(row, epsilon);
    let g_dot_x: f64 = grad_output.iter().zip(row).map(|(g, x)| g * x).sum();
    row.iter()
        .zip(grad_output)
        .map(|(x, g)| r * g - r * r * r * x * g_dot_x / n)
        .collect()
}

/// SwiGLU's `silu(gate) · up`.
pub fn swiglu(gate: f64, up: f64) -> f64 {
    gate / (1.0 + (-gate).exp()) * up
}

/// Gradients of SwiGLU's `silu(gate) · up` with respect to gate and up.
pub fn swiglu_backward(gate: f64, up: f64, grad_output: f64) -> (f64, f64) {
    let sigmoid = 1.0 / (1.0 + (-gate).exp());
    let silu = gate * sigmoid;
    let silu_derivative = sigmoid * (1.0 + gate * (1.0 - sigmoid));
    (grad_output * up * silu_derivative, grad_output * silu)
}

/// One query's attention: the value rows weighted by softmax(q·kⱼ / √d), d = q's length.
pub fn attention(q: &[f64], keys: &[Vec<f64>], values: &[Vec<f64>]) -> Vec<f64> {
    let scale = 1.0 / (q.len() as f64).sqrt();
    let logits: Vec<f64> = keys
        .iter()
        .map(|k| q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() * scale)
        .collect();
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = p.iter().sum();
    (0..values.first().map_or(0, Vec::len))
        .map(|e| p.iter().zip(values).map(|(p, v)| p * v[e]).sum::<f64>() / total)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_weights_the_values_by_softmax() {
        // Equal keys: the plain mean of the values.
        let q = vec![1.0, 0.0];
        let keys = vec![vec![0.5, 0.5]; 2];
        let values = vec![vec![1.0, 2.0], vec![3.0, 6.0]];
        assert_eq!(attention(&q, &keys, &values), vec![2.0, 4.0]);
        // A much larger logit takes (nearly) all the weight.
        let keys = vec![vec![100.0, 0.0], vec![0.0, 0.0]];
        let out = attention(&q, &keys, &values);
        assert!((out[0] - 1.0).abs() < 1e-12 && (out[1] - 2.0).abs() < 1e-12);
    }

    /// Central differences of a scalar function of a vector.
    fn numeric_gradient(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
        let h = 1e-6;
        (0..x.len())
            .map(|i| {
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn rms_norm_is_unit_rms_and_its_gradient_matches_finite_differences() {
        let normed = rms_norm(&[3.0, 4.0], 0.0);
        // 3 and 4 have mean square 12.5: the result has unit root-mean-square.
        let rms = (normed.iter().map(|v| v * v).sum::<f64>() / 2.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-15);
        let x = [0.3, -1.2, 2.5, 0.7];
        let g = [0.5, -0.25, 1.0, 2.0];
        let loss = |x: &[f64]| rms_norm(x, 1e-5).iter().zip(&g).map(|(a, b)| a * b).sum();
        let numeric = numeric_gradient(loss, &x);
        let analytic = rms_norm_backward(&x, &g, 1e-5);
        for (c, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
            assert!((a - n).abs() < 1e-7, "{a} vs {n}");
            assert_eq!(*a, rms_norm_backward_at(&x, &g, 1e-5, c));
        }
    }

    #[test]
    fn swiglu_gradient_matches_finite_differences() {
        assert_eq!(swiglu(0.0, 7.0), 0.0);
        let (gate, up, g) = (0.8, -1.3, 0.6);
        let loss = |x: &[f64]| g * swiglu(x[0], x[1]);
        let numeric = numeric_gradient(loss, &[gate, up]);
        let (d_gate, d_up) = swiglu_backward(gate, up, g);
        assert!((d_gate - numeric[0]).abs() < 1e-8 && (d_up - numeric[1]).abs() < 1e-8);
    }
}
