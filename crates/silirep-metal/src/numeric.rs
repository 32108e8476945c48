//! Element decoding and verification arithmetic: turning GPU buffers (f32, f16, bf16 bits)
//! into f64 for the CPU reference, and the tolerances each precision is held to.

use silirep_core::Dtype;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;

/// IEEE 754 binary16 bits to f64 (exact: every f16 value is representable).
pub(crate) fn f16_bits_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        0x1f if fraction == 0.0 => sign * f64::INFINITY,
        0x1f => f64::NAN,
        _ => sign * (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// bfloat16 bits (the upper half of an f32) to f64.
pub(crate) fn bf16_bits_to_f64(bits: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(bits) << 16))
}

/// Decodes little-endian elements of `dtype` from raw bytes.
pub(crate) fn decode(bytes: &[u8], dtype: Dtype) -> Vec<f64> {
    match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16_bits_to_f64(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| bf16_bits_to_f64(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        other => unreachable!("the Metal backend stores no {other} buffers"),
    }
}

/// Bytes per element for the storage types this backend uses.
pub(crate) fn element_bytes(dtype: Dtype) -> usize {
    dtype.size_bytes() as usize
}

/// Tolerance for outputs compared after normalisation (see [`Checks`]). Chosen from the
/// storage precision's unit roundoff (f32 2⁻²⁴, f16 2⁻¹¹, bf16 2⁻⁸) with room for
/// accumulation-order differences, and small enough that a wrong result (a transposed
/// operand, a skipped tile) on random inputs is far outside it.
pub(crate) fn tolerance(dtype: Dtype) -> f64 {
    match dtype {
        Dtype::F32 => 1e-4,
        Dtype::F16 => 5e-3,
        Dtype::Bf16 => 1e-2,
        _ => 1e-2,
    }
}

/// Collects (GPU value, f64 reference) pairs, normalised so that one tolerance fits both
/// dot products and element-wise results.
///
/// A dot product's rounding error grows with Σ|aᵢ·bᵢ|, not with its (possibly cancelled)
/// value, so dot products are divided by that L1 magnitude: an error then reads as a
/// fraction of the largest value the sum could have had. Element-wise results keep
/// `compare_outputs`' own `max(1, |expected|)` scaling.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    actual: Vec<f64>,
    expected: Vec<f64>,
}

impl Checks {
    pub fn dot(&mut self, actual: f64, expected: f64, l1_magnitude: f64) {
        let scale = l1_magnitude.max(f64::MIN_POSITIVE);
        self.actual.push(actual / scale);
        self.expected.push(expected / scale);
    }

    /// A computed vector against its [`Reference`], each entry normalised by the L1
    /// magnitude of the terms that were summed to produce it (as for [`Checks::dot`]).
    pub fn against(&mut self, actual: &[f64], reference: &Reference) {
        for ((a, e), m) in actual
            .iter()
            .zip(&reference.value)
            .zip(&reference.magnitude)
        {
            self.dot(*a, *e, *m);
        }
    }

    pub fn element(&mut self, actual: f64, expected: f64) {
        self.actual.push(actual);
        self.expected.push(expected);
    }

    pub fn len(&self) -> usize {
        self.actual.len()
    }

    pub fn finish(&self, dtype: Dtype, method: &str) -> Verification {
        compare_outputs(&self.actual, &self.expected, tolerance(dtype), method)
    }
}

/// f64 dot product and its L1 magnitude Σ|aᵢ·bᵢ|.
pub(crate) fn dot_with_magnitude(a: &[f64], b: &[f64]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(sum, l1), (x, y)| {
        (sum + x * y, l1 + (x * y).abs())
    })
}

/// Reference values of a vector of sums, with each sum's L1 magnitude Σ|term|: rounding
/// error grows with the magnitude, while the value can be far smaller through cancellation
/// or averaging (attention outputs are weighted means of V rows).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    pub value: Vec<f64>,
    pub magnitude: Vec<f64>,
}

impl Reference {
    pub fn zeros(len: usize) -> Reference {
        Reference {
            value: vec![0.0; len],
            magnitude: vec![0.0; len],
        }
    }

    /// Adds `weight · row` term by term.
    fn add_scaled(&mut self, weight: f64, row: &[f64]) {
        for ((v, m), x) in self.value.iter_mut().zip(&mut self.magnitude).zip(row) {
            *v += weight * x;
            *m += (weight * x).abs();
        }
    }

    /// Sum of two references over disjoint terms (gradients of heads sharing K/V).
    pub fn add(&mut self, other: &Reference) {
        for (a, b) in self.value.iter_mut().zip(&other.value) {
            *a += b;
        }
        for (a, b) in self.magnitude.iter_mut().zip(&other.magnitude) {
            *a += b;
        }
    }
}

/// One output row of softmax attention in f64: `softmax(q·kⱼ · scale) · V`, with `keys[j]`
/// and `values[j]` the rows of K and V.
pub(crate) fn attention_reference(
    query: &[f64],
    keys: &[&[f64]],
    values: &[&[f64]],
    scale: f64,
) -> Reference {
    let scores: Vec<f64> = keys
        .iter()
        .map(|key| dot_with_magnitude(query, key).0 * scale)
        .collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut output = Reference::zeros(values.first().map_or(0, |v| v.len()));
    for (weight, value) in weights.iter().zip(values) {
        output.add_scaled(weight / total, value);
    }
    output
}

/// Gradients of one attention head for selected rows: dQ for `query_rows`, dK and dV for
/// `key_rows`, from `P = softmax(scale·Q·Kᵀ)`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`,
/// `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`, `dV = Pᵀ·dO`. dK and dV need whole columns of P,
/// so every softmax row is computed.
pub(crate) struct AttentionGradients {
    pub dq: Vec<Reference>,
    pub dk: Vec<Reference>,
    pub dv: Vec<Reference>,
}

pub(crate) fn attention_backward_reference(
    q: &[&[f64]],
    k: &[&[f64]],
    v: &[&[f64]],
    grad_output: &[&[f64]],
    scale: f64,
    query_rows: &[usize],
    key_rows: &[usize],
) -> AttentionGradients {
    let d = q.first().map_or(0, |r| r.len());
    let zeros = |n: usize| vec![Reference::zeros(d); n];
    let mut gradients = AttentionGradients {
        dq: zeros(query_rows.len()),
        dk: zeros(key_rows.len()),
        dv: zeros(key_rows.len()),
    };
    for (i, q_i) in q.iter().enumerate() {
        let scores: Vec<f64> = k
            .iter()
            .map(|k_j| dot_with_magnitude(q_i, k_j).0 * scale)
            .collect();
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        let p: Vec<f64> = exps.iter().map(|e| e / total).collect();
        let dp: Vec<f64> = v
            .iter()
            .map(|v_j| dot_with_magnitude(grad_output[i], v_j).0)
            .collect();
        let row_term: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
        let ds: Vec<f64> = p
            .iter()
            .zip(&dp)
            .map(|(p, dp)| p * (dp - row_term))
            .collect();
        if let Some(slot) = query_rows.iter().position(|&r| r == i) {
            for (j, k_j) in k.iter().enumerate() {
                gradients.dq[slot].add_scaled(scale * ds[j], k_j);
            }
        }
        for (slot, &j) in key_rows.iter().enumerate() {
            gradients.dk[slot].add_scaled(scale * ds[j], q_i);
            gradients.dv[slot].add_scaled(p[j], grad_output[i]);
        }
    }
    gradients
}

/// Scale for random weights so a matrix-vector product keeps unit RMS: the fill kernel's
/// magnitudes are uniform in [0.25, 1], whose mean square is 0.4375.
pub(crate) fn unit_gain_scale(fan_in: u64) -> f32 {
    (1.0 / (0.4375 * fan_in as f64).sqrt()) as f32
}

/// `count` indices spread over `0..len`, deterministic in `seed`, always including the first
/// and last index (where off-by-one and tail-handling bugs show).
pub(crate) fn sample_indices(len: usize, count: usize, seed: u64) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let count = count.min(len).max(1);
    let mut rng = silirep_core::rng::SplitMix64::new(seed);
    let mut indices = vec![0, len - 1];
    while indices.len() < count {
        indices.push(rng.index(len));
    }
    indices.truncate(count);
    indices
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::VerificationStatus;

    #[test]
    fn f16_decoding_matches_known_bit_patterns() {
        // Values from the IEEE 754 binary16 tables.
        let cases = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_953_125),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_477_539_063e-8),
            (0x0000, 0.0),
        ];
        for (bits, value) in cases {
            assert_eq!(f16_bits_to_f64(bits), value, "{bits:#06x}");
        }
        assert!(f16_bits_to_f64(0x7c00).is_infinite());
        assert!(f16_bits_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn bf16_and_f32_decode_little_endian() {
        assert_eq!(bf16_bits_to_f64(0x3f80), 1.0);
        assert_eq!(bf16_bits_to_f64(0xc040), -3.0);
        let bytes: Vec<u8> = [1.5f32, -0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(decode(&bytes, Dtype::F32), vec![1.5, -0.25]);
        assert_eq!(
            decode(&[0x00, 0x3c, 0x00, 0xc0], Dtype::F16),
            vec![1.0, -2.0]
        );
    }

    #[test]
    fn checks_normalise_dot_products_by_magnitude() {
        let a = [1.0, -1.0, 1.0, -1.0];
        let b = [1.0, 1.0, 1.0, 1.0];
        let (dot, l1) = dot_with_magnitude(&a, &b);
        assert_eq!((dot, l1), (0.0, 4.0));
        let mut checks = Checks::default();
        // 1e-3 off on a cancelled sum of magnitude 4000 is fine for f16...
        checks.dot(1e-3 * 4000.0 * 0.5, 0.0, 4000.0);
        assert_eq!(
            checks.finish(Dtype::F16, "t").status,
            VerificationStatus::Passed
        );
        // ...but not for f32.
        assert_eq!(
            checks.finish(Dtype::F32, "t").status,
            VerificationStatus::Failed
        );
        checks.element(2.0, 1.0);
        assert_eq!(checks.len(), 2);
        assert_eq!(
            checks.finish(Dtype::F16, "t").status,
            VerificationStatus::Failed
        );
        // Results far below 1 are judged against their own magnitude: 10% off fails.
        let mut small = Checks::default();
        let reference = Reference {
            value: vec![1.0e-3, -1.0e-3],
            magnitude: vec![2.0e-3, 2.0e-3],
        };
        small.against(&[1.0e-3, -1.0e-3], &reference);
        assert_eq!(
            small.finish(Dtype::F16, "t").status,
            VerificationStatus::Passed
        );
        small.against(&[1.2e-3, -1.0e-3], &reference);
        assert_eq!(
            small.finish(Dtype::F16, "t").status,
            VerificationStatus::Failed
        );
    }

    #[test]
    fn sample_indices_cover_both_ends_and_stay_in_range() {
        let s = sample_indices(1000, 64, 7);
        assert_eq!(s.len(), 64);
        assert_eq!((s[0], s[1]), (0, 999));
        assert!(s.iter().all(|&i| i < 1000));
        assert_eq!(sample_indices(1, 10, 1), vec![0]);
        assert!(sample_indices(0, 10, 1).is_empty());
        assert_eq!(sample_indices(1000, 64, 7), s, "deterministic in the seed");
    }

    #[test]
    fn attention_reference_matches_a_hand_computed_case() {
        // Two keys with scores 0 and ln 3 (after scaling): weights 1/4 and 3/4.
        let query = [1.0, 0.0];
        let k0 = [0.0, 5.0];
        let k1 = [3f64.ln() * 2.0, 1.0];
        let v0 = [4.0, 8.0];
        let v1 = [0.0, 4.0];
        let out = attention_reference(&query, &[&k0, &k1], &[&v0, &v1], 0.5);
        let value = &out.value;
        assert!(
            (value[0] - 1.0).abs() < 1e-12 && (value[1] - 5.0).abs() < 1e-12,
            "{out:?}"
        );
        // Σ pⱼ·|vⱼ|: 1/4·4 + 3/4·0 and 1/4·8 + 3/4·4.
        assert_eq!(out.magnitude, vec![1.0, 5.0]);
    }

    #[test]
    fn attention_backward_matches_finite_differences() {
        // Three tokens, two dimensions; loss = Σ dO ⊙ attention(Q, K, V).
        let q = [[0.3, -0.5], [1.1, 0.2], [-0.7, 0.9]];
        let k = [[0.4, 0.8], [-1.0, 0.3], [0.6, -0.2]];
        let v = [[1.5, -0.4], [0.2, 0.9], [-0.8, 0.5]];
        let d_o = [[0.7, -0.1], [0.3, 0.4], [-0.6, 0.2]];
        let scale = 0.8;
        let owned = |m: &[[f64; 2]; 3]| m.iter().map(|r| r.to_vec()).collect::<Vec<_>>();
        let loss = |q: &[Vec<f64>], k: &[Vec<f64>], v: &[Vec<f64>]| {
            let keys: Vec<&[f64]> = k.iter().map(Vec::as_slice).collect();
            let values: Vec<&[f64]> = v.iter().map(Vec::as_slice).collect();
            q.iter()
                .zip(&d_o)
                .map(|(q_i, g)| {
                    dot_with_magnitude(&attention_reference(q_i, &keys, &values, scale).value, g).0
                })
                .sum::<f64>()
        };
        let (qv, kv, vv) = (owned(&q), owned(&k), owned(&v));
        let q_rows: Vec<&[f64]> = qv.iter().map(Vec::as_slice).collect();
        let k_rows: Vec<&[f64]> = kv.iter().map(Vec::as_slice).collect();
        let v_rows: Vec<&[f64]> = vv.iter().map(Vec::as_slice).collect();
        let do_rows: Vec<&[f64]> = d_o.iter().map(|r| r.as_slice()).collect();
        let grads =
            attention_backward_reference(&q_rows, &k_rows, &v_rows, &do_rows, scale, &[1], &[0, 2]);
        let h = 1e-6;
        let perturbed = |which: usize, row: usize, col: usize| {
            let mut plus = [qv.clone(), kv.clone(), vv.clone()];
            let mut minus = [qv.clone(), kv.clone(), vv.clone()];
            plus[which][row][col] += h;
            minus[which][row][col] -= h;
            (loss(&plus[0], &plus[1], &plus[2]) - loss(&minus[0], &minus[1], &minus[2])) / (2.0 * h)
        };
        for col in 0..2 {
            assert!((grads.dq[0].value[col] - perturbed(0, 1, col)).abs() < 1e-7);
            for (slot, key) in [0usize, 2].into_iter().enumerate() {
                assert!((grads.dk[slot].value[col] - perturbed(1, key, col)).abs() < 1e-7);
                assert!((grads.dv[slot].value[col] - perturbed(2, key, col)).abs() < 1e-7);
            }
        }
    }

    #[test]
    fn unit_gain_scale_keeps_unit_rms() {
        // Mean square of a uniform in [0.25, 1]: (1³ − 0.25³) / (3 · 0.75) = 0.4375.
        let mean_square = (1.0f64 - 0.25f64.powi(3)) / (3.0 * 0.75);
        assert!((mean_square - 0.4375).abs() < 1e-12);
        let scale = f64::from(unit_gain_scale(4096));
        assert!((scale * scale * mean_square * 4096.0 - 1.0).abs() < 1e-6);
    }
}
