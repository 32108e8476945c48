//! Backward pass of the Mistral-shaped layer in `layer.rs`: given the forward activations and
//! an upstream gradient `dy`, the gradients of the input and of all seven weight matrices.
//!
//! What is timed is the backward pass alone (the forward runs once in `prepare`), matching
//! `layer_backward` rows from other tools and the FLOP rule of two GEMMs (input gradient and
//! weight gradient) per forward GEMM. Verification is stage by stage, as for the forward:
//! sampled entries of every gradient against an f64 recomputation from the (already checked)
//! f32 values of the stage before.

use crate::common::{Rng, matmul_f32, matmul_f32_lhs_transposed, random_f32, time_each};
use crate::layer::{Trace, Weights, dims, forward, silu};
use crate::softmax;
use rayon::prelude::*;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{KernelError, LayerShape, PreparedKernel, reference};
use std::collections::BTreeMap;

const EPS: f32 = LayerShape::RMS_NORM_EPSILON;

/// Every gradient one backward pass produces, kept for verification.
#[derive(Default)]
struct Grads {
    d_act: Vec<f32>,
    d_down_w: Vec<f32>,
    d_gate: Vec<f32>,
    d_up: Vec<f32>,
    d_gate_w: Vec<f32>,
    d_up_w: Vec<f32>,
    d_h2: Vec<f32>,
    d_x2: Vec<f32>,
    d_attn: Vec<f32>,
    d_o_w: Vec<f32>,
    d_q: Vec<f32>,
    d_k: Vec<f32>,
    d_v: Vec<f32>,
    d_q_w: Vec<f32>,
    d_k_w: Vec<f32>,
    d_v_w: Vec<f32>,
    d_h1: Vec<f32>,
    d_x: Vec<f32>,
}

pub struct LayerBackward {
    shape: LayerShape,
    tokens: usize,
    weights: Weights,
    trace: Trace,
    dy: Vec<f32>,
    grads: Grads,
    pool: rayon::ThreadPool,
    threads: usize,
}

impl LayerBackward {
    /// `weights` and `input` as the forward layer made them; runs the forward once.
    pub(crate) fn prepare(
        shape: LayerShape,
        tokens: usize,
        weights: Weights,
        input: Vec<f32>,
        threads: usize,
        seed: u64,
    ) -> Result<Self, KernelError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| KernelError::Backend(e.to_string()))?;
        let trace = pool.install(|| forward(&weights, &shape, input, tokens, true, None, threads));
        let dy = random_f32(trace.y.len(), -1.0, 1.0, seed ^ 0xd1);
        Ok(LayerBackward {
            shape,
            tokens,
            weights,
            trace,
            dy,
            grads: Grads::default(),
            pool,
            threads,
        })
    }

    fn run_once(&mut self) {
        let grads = self.pool.install(|| {
            backward(
                &self.weights,
                &self.shape,
                &self.trace,
                &self.dy,
                self.tokens,
                self.threads,
            )
        });
        self.grads = grads;
    }
}

/// `dy · Wᵀ` for a projection `y = x · W` with `W` of `rows × cols`.
fn input_grad(dy: &[f32], w: &[f32], tokens: usize, cols: usize, threads: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let mut out = vec![0.0f32; tokens * rows];
    matmul_f32(&mut out, dy, w, (tokens, rows, cols), true, threads);
    out
}

/// `xᵀ · dy`: the gradient of `W` (`rows × cols`) in `y = x · W`.
fn weight_grad(x: &[f32], dy: &[f32], tokens: usize, cols: usize, threads: usize) -> Vec<f32> {
    let rows = x.len() / tokens;
    let mut out = vec![0.0f32; rows * cols];
    matmul_f32_lhs_transposed(&mut out, x, dy, (rows, cols, tokens), threads);
    out
}

/// Gradient through `h = x / rms(x)` row by row:
/// `dx = r·dh − x·r³·(dh·x)/n` with `r = 1/√(mean(x²)+ε)`.
fn rms_norm_backward(x: &[f32], dh: &[f32], width: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(width)
        .zip(x.par_chunks(width).zip(dh.par_chunks(width)))
        .for_each(|(dx, (x, dh))| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / width as f32;
            let r = 1.0 / (ms + EPS).sqrt();
            let dot: f32 = x.iter().zip(dh).map(|(a, b)| a * b).sum();
            let k = r * r * r * dot / width as f32;
            for ((d, x), g) in dx.iter_mut().zip(x).zip(dh) {
                *d = r * g - x * k;
            }
        });
    dx
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn backward(
    w: &Weights,
    shape: &LayerShape,
    t: &Trace,
    dy: &[f32],
    tokens: usize,
    threads: usize,
) -> Grads {
    let (h, qd, kvd, inter) = dims(shape);
    // y = x2 + act · Wd
    let d_act = input_grad(dy, &w.down, tokens, h, threads);
    let d_down_w = weight_grad(&t.act, dy, tokens, h, threads);
    // act = silu(gate) ⊙ up
    let (d_gate, d_up): (Vec<f32>, Vec<f32>) = d_act
        .par_iter()
        .zip(t.gate.par_iter().zip(&t.up))
        .map(|(da, (g, u))| {
            let sig = 1.0 / (1.0 + (-g).exp());
            (da * u * sig * (1.0 + g * (1.0 - sig)), da * silu(*g))
        })
        .unzip();
    let d_gate_w = weight_grad(&t.h2, &d_gate, tokens, inter, threads);
    let d_up_w = weight_grad(&t.h2, &d_up, tokens, inter, threads);
    let d_h2 = add(
        &input_grad(&d_gate, &w.gate, tokens, inter, threads),
        &input_grad(&d_up, &w.up, tokens, inter, threads),
    );
    // x2 = x + attn · Wo; the residual carries dy straight through.
    let d_x2 = add(dy, &rms_norm_backward(&t.x2, &d_h2, h));
    let d_attn = input_grad(&d_x2, &w.o, tokens, h, threads);
    let d_o_w = weight_grad(&t.attn, &d_x2, tokens, h, threads);
    let (d_q, d_k, d_v) = attention_backward(&t.q, &t.k, &t.v, &d_attn, tokens, shape);
    let d_q_w = weight_grad(&t.h1, &d_q, tokens, qd, threads);
    let d_k_w = weight_grad(&t.h1, &d_k, tokens, kvd, threads);
    let d_v_w = weight_grad(&t.h1, &d_v, tokens, kvd, threads);
    let d_h1 = add(
        &add(
            &input_grad(&d_q, &w.q, tokens, qd, threads),
            &input_grad(&d_k, &w.k, tokens, kvd, threads),
        ),
        &input_grad(&d_v, &w.v, tokens, kvd, threads),
    );
    let d_x = add(&d_x2, &rms_norm_backward(&t.x, &d_h1, h));
    Grads {
        d_act,
        d_down_w,
        d_gate,
        d_up,
        d_gate_w,
        d_up_w,
        d_h2,
        d_x2,
        d_attn,
        d_o_w,
        d_q,
        d_k,
        d_v,
        d_q_w,
        d_k_w,
        d_v_w,
        d_h1,
        d_x,
    }
}

/// Softmax probabilities of query row `i` of head `hh` over all keys (non-causal), in f32 as
/// the forward computed them.
fn probabilities(q: &[f32], k: &[f32], i: usize, hh: usize, g: usize, dims: AttnDims) -> Vec<f32> {
    let AttnDims { tokens, d, qd, kvd } = dims;
    let scale = 1.0 / (d as f32).sqrt();
    let qi = &q[i * qd + hh * d..][..d];
    let mut p: Vec<f32> = (0..tokens)
        .map(|j| {
            let kj = &k[j * kvd + g * d..][..d];
            qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale
        })
        .collect();
    let max = softmax::row_max(&p);
    let total = softmax::exp_shifted_sum(&mut p, 1.0, max);
    p.iter_mut().for_each(|s| *s /= total);
    p
}

#[derive(Clone, Copy)]
struct AttnDims {
    tokens: usize,
    d: usize,
    qd: usize,
    kvd: usize,
}

/// Gradients of Q, K and V through `softmax(Q·Kᵀ/√d)·V` with grouped KV heads:
/// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`, `dQ = dS·K/√d`,
/// `dK = dSᵀ·Q/√d`; K and V gradients add up over the query heads sharing them.
fn attention_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d_out: &[f32],
    tokens: usize,
    shape: &LayerShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (d, heads, kv) = (
        shape.head_dim as usize,
        shape.heads as usize,
        shape.kv_heads as usize,
    );
    let dims = AttnDims {
        tokens,
        d,
        qd: heads * d,
        kvd: kv * d,
    };
    let per_group = heads / kv;
    let scale = 1.0 / (d as f32).sqrt();
    // One task per KV group: it owns that group's dK/dV and its query heads' dQ, so the
    // threads never write to the same memory; results are scattered afterwards.
    let groups: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..kv)
        .into_par_iter()
        .map(|g| {
            let mut dq = vec![0.0f32; per_group * tokens * d];
            let mut dk = vec![0.0f32; tokens * d];
            let mut dv = vec![0.0f32; tokens * d];
            let mut ds = vec![0.0f32; tokens];
            for local in 0..per_group {
                let hh = g * per_group + local;
                for i in 0..tokens {
                    let p = probabilities(q, k, i, hh, g, dims);
                    let doi = &d_out[i * dims.qd + hh * d..][..d];
                    let mut weighted = 0.0f32;
                    for j in 0..tokens {
                        let vj = &v[j * dims.kvd + g * d..][..d];
                        let dp: f32 = doi.iter().zip(vj).map(|(a, b)| a * b).sum();
                        ds[j] = dp;
                        weighted += dp * p[j];
                        for (acc, o) in dv[j * d..][..d].iter_mut().zip(doi) {
                            *acc += p[j] * o;
                        }
                    }
                    let qi = &q[i * dims.qd + hh * d..][..d];
                    let dqi = &mut dq[(local * tokens + i) * d..][..d];
                    for j in 0..tokens {
                        let s = p[j] * (ds[j] - weighted) * scale;
                        let kj = &k[j * dims.kvd + g * d..][..d];
                        for (acc, kk) in dqi.iter_mut().zip(kj) {
                            *acc += s * kk;
                        }
                        for (acc, qq) in dk[j * d..][..d].iter_mut().zip(qi) {
                            *acc += s * qq;
                        }
                    }
                }
            }
            (dq, dk, dv)
        })
        .collect();
    let mut d_q = vec![0.0f32; tokens * dims.qd];
    let mut d_k = vec![0.0f32; tokens * dims.kvd];
    let mut d_v = vec![0.0f32; tokens * dims.kvd];
    for (g, (dq, dk, dv)) in groups.iter().enumerate() {
        for t in 0..tokens {
            d_k[t * dims.kvd + g * d..][..d].copy_from_slice(&dk[t * d..][..d]);
            d_v[t * dims.kvd + g * d..][..d].copy_from_slice(&dv[t * d..][..d]);
            for local in 0..per_group {
                let hh = g * per_group + local;
                d_q[t * dims.qd + hh * d..][..d]
                    .copy_from_slice(&dq[(local * tokens + t) * d..][..d]);
            }
        }
    }
    (d_q, d_k, d_v)
}

/// Sampled (actual, expected) pairs across all gradients.
#[derive(Default)]
struct Checks {
    actual: Vec<f64>,
    expected: Vec<f64>,
}

const SAMPLES: usize = 12;

impl Checks {
    fn push(&mut self, actual: f32, expected: f64) {
        self.actual.push(actual as f64);
        self.expected.push(expected);
    }

    /// `out = Σ dyᵢ · Wᵢᵀ` over the given (dy, W, cols) terms, each `W` of `rows × cols`.
    fn input_grad(&mut self, rng: &mut Rng, out: &[f32], terms: &[(&[f32], &[f32], usize)]) {
        let rows = terms[0].1.len() / terms[0].2;
        let tokens = out.len() / rows;
        for _ in 0..SAMPLES {
            let (t, r) = (rng.index(tokens), rng.index(rows));
            let e: f64 = terms
                .iter()
                .map(|&(dy, w, cols)| {
                    (0..cols)
                        .map(|c| dy[t * cols + c] as f64 * w[r * cols + c] as f64)
                        .sum::<f64>()
                })
                .sum();
            self.push(out[t * rows + r], e);
        }
    }

    /// `out = xᵀ · dy` (`rows × cols`).
    fn weight_grad(&mut self, rng: &mut Rng, out: &[f32], x: &[f32], dy: &[f32], cols: usize) {
        let tokens = dy.len() / cols;
        let rows = x.len() / tokens;
        for _ in 0..SAMPLES {
            let (r, c) = (rng.index(rows), rng.index(cols));
            let e: f64 = (0..tokens)
                .map(|t| x[t * rows + r] as f64 * dy[t * cols + c] as f64)
                .sum();
            self.push(out[r * cols + c], e);
        }
    }

    fn elementwise(&mut self, rng: &mut Rng, out: &[f32], f: impl Fn(usize) -> f64) {
        for _ in 0..SAMPLES {
            let i = rng.index(out.len());
            self.push(out[i], f(i));
        }
    }
}

/// f64 `rms_norm_backward` of element `i`, plus `residual[i]`.
fn rms_norm_backward_entry(x: &[f32], dh: &[f32], residual: &[f32], width: usize, i: usize) -> f64 {
    let row = (i / width) * width;
    let wide = |v: &[f32]| {
        v[row..][..width]
            .iter()
            .map(|e| *e as f64)
            .collect::<Vec<_>>()
    };
    residual[i] as f64 + reference::rms_norm_backward_at(&wide(x), &wide(dh), EPS as f64, i - row)
}

impl PreparedKernel for LayerBackward {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        Ok(time_each(iterations, || self.run_once()))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once();
        let (t, g, w, dy) = (&self.trace, &self.grads, &self.weights, &self.dy);
        let (h, qd, kvd, inter) = dims(&self.shape);
        let mut rng = Rng::new(0xbac4);
        let mut c = Checks::default();
        c.input_grad(&mut rng, &g.d_act, &[(dy, &w.down, h)]);
        c.weight_grad(&mut rng, &g.d_down_w, &t.act, dy, h);
        c.elementwise(&mut rng, &g.d_gate, |i| {
            let x = t.gate[i] as f64;
            let sig = 1.0 / (1.0 + (-x).exp());
            g.d_act[i] as f64 * t.up[i] as f64 * sig * (1.0 + x * (1.0 - sig))
        });
        c.elementwise(&mut rng, &g.d_up, |i| {
            let x = t.gate[i] as f64;
            g.d_act[i] as f64 * x / (1.0 + (-x).exp())
        });
        c.weight_grad(&mut rng, &g.d_gate_w, &t.h2, &g.d_gate, inter);
        c.weight_grad(&mut rng, &g.d_up_w, &t.h2, &g.d_up, inter);
        c.input_grad(
            &mut rng,
            &g.d_h2,
            &[(&g.d_gate, &w.gate, inter), (&g.d_up, &w.up, inter)],
        );
        c.elementwise(&mut rng, &g.d_x2, |i| {
            rms_norm_backward_entry(&t.x2, &g.d_h2, dy, h, i)
        });
        c.input_grad(&mut rng, &g.d_attn, &[(&g.d_x2, &w.o, h)]);
        c.weight_grad(&mut rng, &g.d_o_w, &t.attn, &g.d_x2, h);
        self.check_attention(&mut rng, &mut c);
        c.weight_grad(&mut rng, &g.d_q_w, &t.h1, &g.d_q, qd);
        c.weight_grad(&mut rng, &g.d_k_w, &t.h1, &g.d_k, kvd);
        c.weight_grad(&mut rng, &g.d_v_w, &t.h1, &g.d_v, kvd);
        c.input_grad(
            &mut rng,
            &g.d_h1,
            &[(&g.d_q, &w.q, qd), (&g.d_k, &w.k, kvd), (&g.d_v, &w.v, kvd)],
        );
        c.elementwise(&mut rng, &g.d_x, |i| {
            rms_norm_backward_entry(&t.x, &g.d_h1, &g.d_x2, h, i)
        });
        Ok(compare_outputs(
            &c.actual,
            &c.expected,
            1e-4,
            "every gradient (7 weight gradients, input gradients of 7 projections, SwiGLU, attention, both norms) on sampled entries vs f64",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("threads".into(), self.threads.to_string()),
            (
                "timed".into(),
                "backward pass only (activations from one forward kept)".into(),
            ),
            ("weights".into(), "f32, random ±1/√fan-in".into()),
        ])
    }
}

impl LayerBackward {
    /// dQ, dK and dV on sampled entries, recomputed in f64 from Q, K, V and dO.
    fn check_attention(&self, rng: &mut Rng, c: &mut Checks) {
        let (t, g) = (&self.trace, &self.grads);
        let (d, heads, kv) = (
            self.shape.head_dim as usize,
            self.shape.heads as usize,
            self.shape.kv_heads as usize,
        );
        let (qd, kvd, n) = (heads * d, kv * d, self.tokens);
        let per_group = heads / kv;
        let scale = 1.0 / (d as f64).sqrt();
        let dot = |a: &[f32], b: &[f32]| -> f64 {
            a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
        };
        // P and dS of one (query row, head) in f64.
        let row = |i: usize, hh: usize| -> (Vec<f64>, Vec<f64>) {
            let grp = hh / per_group;
            let qi = &t.q[i * qd + hh * d..][..d];
            let logits: Vec<f64> = (0..n)
                .map(|j| dot(qi, &t.k[j * kvd + grp * d..][..d]) * scale)
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f64 = e.iter().sum();
            let p: Vec<f64> = e.iter().map(|x| x / total).collect();
            let doi = &g.d_attn[i * qd + hh * d..][..d];
            let dp: Vec<f64> = (0..n)
                .map(|j| dot(doi, &t.v[j * kvd + grp * d..][..d]))
                .collect();
            let weighted: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
            let ds = p
                .iter()
                .zip(&dp)
                .map(|(p, dp)| p * (dp - weighted))
                .collect();
            (p, ds)
        };
        for _ in 0..4 {
            let (i, hh, e) = (rng.index(n), rng.index(heads), rng.index(d));
            let grp = hh / per_group;
            let (_, ds) = row(i, hh);
            let expected: f64 = (0..n)
                .map(|j| ds[j] * t.k[j * kvd + grp * d + e] as f64 * scale)
                .sum();
            c.push(g.d_q[i * qd + hh * d + e], expected);
        }
        for _ in 0..2 {
            let (j, grp, e) = (rng.index(n), rng.index(kv), rng.index(d));
            let (mut dk, mut dv) = (0.0, 0.0);
            for hh in grp * per_group..(grp + 1) * per_group {
                for i in 0..n {
                    let (p, ds) = row(i, hh);
                    dk += ds[j] * t.q[i * qd + hh * d + e] as f64 * scale;
                    dv += p[j] * g.d_attn[i * qd + hh * d + e] as f64;
                }
            }
            c.push(g.d_k[j * kvd + grp * d + e], dk);
            c.push(g.d_v[j * kvd + grp * d + e], dv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use crate::layer::tests::TINY;
    use silirep_core::schema::VerificationStatus;

    fn tiny(tokens: usize) -> LayerBackward {
        let (weights, input) = Layer::weights_and_input(TINY, tokens as u64, 5).unwrap();
        LayerBackward::prepare(TINY, tokens, weights, input, 2, 5).unwrap()
    }

    #[test]
    fn backward_verifies() {
        let v = tiny(12).verify().unwrap();
        assert_eq!(v.status, VerificationStatus::Passed, "{v:?}");
    }

    /// Gradients must agree with finite differences of a scalar loss `Σ dy ⊙ y` — an
    /// end-to-end check independent of the stage-by-stage formulas verify() uses.
    #[test]
    fn input_gradient_matches_finite_differences() {
        let mut b = tiny(6);
        b.run_once();
        let loss = |b: &LayerBackward, x: Vec<f32>| -> f64 {
            let t = forward(&b.weights, &b.shape, x, b.tokens, true, None, 1);
            t.y.iter()
                .zip(&b.dy)
                .map(|(y, g)| *y as f64 * *g as f64)
                .sum()
        };
        let mut rng = Rng::new(9);
        for _ in 0..6 {
            let i = rng.index(b.trace.x.len());
            let step = 1e-2f32;
            let mut plus = b.trace.x.clone();
            plus[i] += step;
            let mut minus = b.trace.x.clone();
            minus[i] -= step;
            let numeric = (loss(&b, plus) - loss(&b, minus)) / (2.0 * step as f64);
            let analytic = b.grads.d_x[i] as f64;
            assert!(
                (numeric - analytic).abs() < 2e-2 * analytic.abs().max(1.0),
                "x[{i}]: numeric {numeric} analytic {analytic}"
            );
        }
    }

    #[test]
    fn a_wrong_gradient_is_caught() {
        let mut b = tiny(8);
        b.run_once();
        // Corrupt the gate weights after the backward ran: the checks of d_h2 must notice.
        b.weights.gate.iter_mut().for_each(|w| *w *= 1.5);
        let (g, w) = (&b.grads, &b.weights);
        let mut c = Checks::default();
        c.input_grad(
            &mut Rng::new(1),
            &g.d_h2,
            &[(&g.d_gate, &w.gate, 96), (&g.d_up, &w.up, 96)],
        );
        assert_eq!(
            compare_outputs(&c.actual, &c.expected, 1e-4, "t").status,
            VerificationStatus::Failed
        );
    }
}
