//! A Mistral-shaped decoder layer in f32 — RMSNorm, Q/K/V/O projections with grouped KV
//! heads, non-causal attention, SwiGLU feed-forward, residuals — for `layer` forward, and the
//! same weights streamed token by token for `decode`, each new token attending over its
//! sequence's KV cache of `context` positions (its own key and value written into the last
//! slot) when `context` > 0.
//!
//! Verification is stage by stage: every intermediate is checked on sampled entries against
//! an f64 recomputation from the previous stage's (already checked) values, which covers the
//! whole layer without an f64 re-run of billions of FLOPs.

use crate::common::{Rng, matmul_f32, random_f32, time_each, try_alloc, try_random_f32};
use crate::softmax;
use rayon::prelude::*;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Verification, VerificationStatus};
use silirep_core::{KernelError, LayerShape, PreparedKernel, reference};
use std::collections::BTreeMap;

pub(crate) struct Weights {
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) o: Vec<f32>,
    pub(crate) gate: Vec<f32>,
    pub(crate) up: Vec<f32>,
    pub(crate) down: Vec<f32>,
}

/// Activations of one pass, kept for verification.
#[derive(Default)]
pub(crate) struct Trace {
    pub(crate) x: Vec<f32>,
    pub(crate) h1: Vec<f32>,
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) attn: Vec<f32>,
    pub(crate) o: Vec<f32>,
    pub(crate) x2: Vec<f32>,
    pub(crate) h2: Vec<f32>,
    pub(crate) gate: Vec<f32>,
    pub(crate) up: Vec<f32>,
    pub(crate) act: Vec<f32>,
    pub(crate) down: Vec<f32>,
    pub(crate) y: Vec<f32>,
}

/// One layer's KV cache for decode: `[sequence][kv head][context][head_dim]` keys and values,
/// the last position being the token decoded now.
pub(crate) struct KvCache {
    pub(crate) context: usize,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
}

impl KvCache {
    fn index(&self, shape: &LayerShape, sequence: usize, head: usize, position: usize) -> usize {
        let d = shape.head_dim as usize;
        ((sequence * shape.kv_heads as usize + head) * self.context + position) * d
    }

    /// Writes each sequence's new key and value (`k`, `v`: `[sequence][kv_heads·head_dim]`)
    /// into the last position.
    fn append(&mut self, shape: &LayerShape, k: &[f32], v: &[f32]) {
        let d = shape.head_dim as usize;
        let kvd = shape.kv_heads as usize * d;
        for s in 0..k.len() / kvd {
            for g in 0..shape.kv_heads as usize {
                let at = self.index(shape, s, g, self.context - 1);
                self.k[at..][..d].copy_from_slice(&k[s * kvd + g * d..][..d]);
                self.v[at..][..d].copy_from_slice(&v[s * kvd + g * d..][..d]);
            }
        }
    }
}

pub struct Layer {
    shape: LayerShape,
    tokens: usize,
    /// `false` for decode: one token per sequence, no attention mixing between rows.
    attention: bool,
    /// Decode's KV caches, one per layer; empty without one (context 0).
    caches: Vec<KvCache>,
    layers: Vec<Weights>,
    input: Vec<f32>,
    trace: Trace,
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Layer {
    /// `context` > 0 (decode only, `attention` false): each token attends over a KV cache of
    /// that many positions per sequence.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        shape: LayerShape,
        tokens: u64,
        layers: u64,
        attention: bool,
        context: u64,
        threads: usize,
        memory_bytes: Option<u64>,
        seed: u64,
    ) -> Result<Self, KernelError> {
        fits_in_memory(&shape, layers, false, memory_bytes)?;
        let cache_len = (tokens * shape.kv_heads * shape.head_dim * context) as usize;
        if let Some(mem) = memory_bytes {
            // Weights (checked above) and both caches of every layer, f32.
            let needed = 4.0
                * layers as f64
                * (shape.weights(silirep_core::LayerPart::Full) as f64 + 2.0 * cache_len as f64);
            if needed > mem as f64 * 0.75 {
                return Err(KernelError::OutOfMemory(format!(
                    "{layers} layer(s) of f32 weights and a KV cache of {context} positions need {needed:.0} bytes; this machine has {mem}"
                )));
            }
        }
        if context > 0
            && (attention || shape.kv_heads == 0 || !shape.heads.is_multiple_of(shape.kv_heads))
        {
            return Err(KernelError::Unsupported(
                "a KV cache is for decode, with heads a multiple of kv_heads".into(),
            ));
        }
        let mut all = Vec::new();
        let mut caches = Vec::new();
        for l in 0..layers {
            all.push(make_weights(&shape, l, seed)?);
            if context > 0 {
                // The earlier tokens' keys and values: O(1), like the new ones.
                let k = try_random_f32(cache_len, -1.0, 1.0, seed ^ (l << 8) ^ 0x21, "KV cache")?;
                let v = try_random_f32(cache_len, -1.0, 1.0, seed ^ (l << 8) ^ 0x22, "KV cache")?;
                caches.push(KvCache {
                    context: context as usize,
                    k,
                    v,
                });
            }
        }
        Ok(Layer {
            shape,
            tokens: tokens as usize,
            attention,
            caches,
            layers: all,
            input: random_f32(
                tokens as usize * shape.hidden as usize,
                -1.0,
                1.0,
                seed ^ 0x1f,
            ),
            trace: Trace::default(),
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| KernelError::Backend(e.to_string()))?,
            threads,
        })
    }

    /// One layer's weights and an input, exactly as `prepare` makes them for layer 0: the
    /// backward pass starts from the same state the forward measures.
    pub(crate) fn weights_and_input(
        shape: LayerShape,
        tokens: u64,
        seed: u64,
    ) -> Result<(Weights, Vec<f32>), KernelError> {
        Ok((
            make_weights(&shape, 0, seed)?,
            random_f32(
                tokens as usize * shape.hidden as usize,
                -1.0,
                1.0,
                seed ^ 0x1f,
            ),
        ))
    }

    fn run_once(&mut self) {
        let mut x = self.input.clone();
        let count = self.layers.len();
        for index in 0..count {
            let cache = self.caches.get_mut(index);
            let trace = self.pool.install(|| {
                forward(
                    &self.layers[index],
                    &self.shape,
                    x,
                    self.tokens,
                    self.attention,
                    cache,
                    self.threads,
                )
            });
            x = trace.y.clone();
            self.trace = trace;
        }
    }
}

/// Refuses (as out of memory, recorded in the result) `layers` layers of f32 weights, plus
/// as many weight gradients when `gradients`, that would not fit in 3/4 of `memory_bytes`.
pub(crate) fn fits_in_memory(
    shape: &LayerShape,
    layers: u64,
    gradients: bool,
    memory_bytes: Option<u64>,
) -> Result<(), KernelError> {
    let copies = if gradients { 2 } else { 1 };
    let needed = 4 * copies * layers * shape.weights(silirep_core::LayerPart::Full);
    match memory_bytes {
        Some(mem) if needed > mem * 3 / 4 => Err(KernelError::OutOfMemory(format!(
            "{layers} layer(s) of f32 weights{} need {needed} bytes; this machine has {mem}",
            if gradients {
                " and their gradients"
            } else {
                ""
            }
        ))),
        _ => Ok(()),
    }
}

/// Layer `index`'s seven weight matrices, uniform in ±1/√fan-in so activations stay O(1)
/// through the projections.
fn make_weights(shape: &LayerShape, index: u64, seed: u64) -> Result<Weights, KernelError> {
    let (h, qd, kvd, inter) = dims(shape);
    let make = |rows: usize, cols: usize, tag: u64| -> Result<Vec<f32>, KernelError> {
        let bound = 1.0 / (rows as f32).sqrt();
        let mut w = try_alloc(rows * cols, 0.0f32, "layer weights")?;
        w.copy_from_slice(&random_f32(rows * cols, -bound, bound, seed ^ tag));
        Ok(w)
    };
    let t = index << 8;
    Ok(Weights {
        q: make(h, qd, t | 1)?,
        k: make(h, kvd, t | 2)?,
        v: make(h, kvd, t | 3)?,
        o: make(qd, h, t | 4)?,
        gate: make(h, inter, t | 5)?,
        up: make(h, inter, t | 6)?,
        down: make(inter, h, t | 7)?,
    })
}

pub(crate) fn dims(shape: &LayerShape) -> (usize, usize, usize, usize) {
    (
        shape.hidden as usize,
        (shape.heads * shape.head_dim) as usize,
        (shape.kv_heads * shape.head_dim) as usize,
        shape.intermediate as usize,
    )
}

fn rms_norm(x: &[f32], width: usize) -> Vec<f32> {
    x.chunks(width)
        .flat_map(|row| {
            let ms = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
            let inv = 1.0 / (ms + LayerShape::RMS_NORM_EPSILON).sqrt();
            row.iter().map(move |v| v * inv)
        })
        .collect()
}

pub(crate) fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn project(x: &[f32], w: &[f32], tokens: usize, cols: usize, threads: usize) -> Vec<f32> {
    if tokens <= STREAMING_TOKENS {
        return project_streaming(x, w, tokens, cols, threads);
    }
    let rows = w.len() / cols;
    let mut out = vec![0.0f32; tokens * cols];
    matmul_f32(&mut out, x, w, (tokens, cols, rows), false, threads);
    out
}

/// Up to this many tokens a projection is a memory-bound pass over the weights (decode), and
/// the GEMM library's blocking for matrices costs half the bandwidth; above it, GEMM wins.
const STREAMING_TOKENS: usize = 8;

/// `x · W` for a few tokens, streaming `W` once: each thread owns one band of output columns
/// and walks every weight row through it (one multiply-add per weight and token), so the
/// weights are read sequentially in long runs, as a bandwidth kernel reads.
fn project_streaming(x: &[f32], w: &[f32], tokens: usize, cols: usize, threads: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let band = cols.div_ceil(threads.max(1)).next_multiple_of(16).min(cols);
    let starts: Vec<usize> = (0..cols).step_by(band).collect();
    let fused = crate::common::x86_fma_available();
    let bands: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&c0| {
            let width = band.min(cols - c0);
            let mut acc = vec![0.0f32; tokens * width];
            if fused {
                // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    stream_band_avx2_fma(&mut acc, x, w, (rows, cols, c0, width))
                }
            } else {
                stream_band(&mut acc, x, w, (rows, cols, c0, width))
            }
            acc
        })
        .collect();
    let mut out = vec![0.0f32; tokens * cols];
    for (&c0, acc) in starts.iter().zip(&bands) {
        let width = band.min(cols - c0);
        for t in 0..tokens {
            out[t * cols + c0..][..width].copy_from_slice(&acc[t * width..][..width]);
        }
    }
    out
}

/// `acc[t][·] += x[t][r] · W[r][c0..c0+width]` over every row `r`.
#[inline(always)]
fn stream_band_body(
    acc: &mut [f32],
    x: &[f32],
    w: &[f32],
    (rows, cols, c0, width): (usize, usize, usize, usize),
) {
    let tokens = acc.len() / width;
    for r in 0..rows {
        let w_row = &w[r * cols + c0..][..width];
        for t in 0..tokens {
            let xv = x[t * rows + r];
            for (a, wv) in acc[t * width..][..width].iter_mut().zip(w_row) {
                *a += xv * wv;
            }
        }
    }
}

fn stream_band(acc: &mut [f32], x: &[f32], w: &[f32], shape: (usize, usize, usize, usize)) {
    stream_band_body(acc, x, w, shape)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn stream_band_avx2_fma(
    acc: &mut [f32],
    x: &[f32],
    w: &[f32],
    shape: (usize, usize, usize, usize),
) {
    stream_band_body(acc, x, w, shape)
}

pub(crate) fn forward(
    w: &Weights,
    shape: &LayerShape,
    x: Vec<f32>,
    tokens: usize,
    attention: bool,
    cache: Option<&mut KvCache>,
    threads: usize,
) -> Trace {
    let (h, qd, kvd, inter) = dims(shape);
    let h1 = rms_norm(&x, h);
    let q = project(&h1, &w.q, tokens, qd, threads);
    let k = project(&h1, &w.k, tokens, kvd, threads);
    let v = project(&h1, &w.v, tokens, kvd, threads);
    let attn = if attention {
        grouped_attention(&q, &k, &v, tokens, shape)
    } else if let Some(cache) = cache {
        cache.append(shape, &k, &v);
        cached_attention(&q, cache, tokens, shape)
    } else {
        // Decode without a KV cache: the token's own query passes straight through.
        q.clone()
    };
    let o = project(&attn, &w.o, tokens, h, threads);
    let x2: Vec<f32> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
    let h2 = rms_norm(&x2, h);
    let gate = project(&h2, &w.gate, tokens, inter, threads);
    let up = project(&h2, &w.up, tokens, inter, threads);
    let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| silu(*g) * u).collect();
    let down = project(&act, &w.down, tokens, h, threads);
    let y: Vec<f32> = x2.iter().zip(&down).map(|(a, b)| a + b).collect();
    Trace {
        x,
        h1,
        q,
        k,
        v,
        attn,
        o,
        x2,
        h2,
        gate,
        up,
        act,
        down,
        y,
    }
}

/// Non-causal attention over the `tokens` rows; query head `hh` reads KV head
/// `hh / (heads / kv_heads)`.
pub(crate) fn grouped_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    tokens: usize,
    shape: &LayerShape,
) -> Vec<f32> {
    let (d, heads, kv) = (
        shape.head_dim as usize,
        shape.heads as usize,
        shape.kv_heads as usize,
    );
    let (qd, kvd) = (heads * d, kv * d);
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0.0f32; tokens * qd];
    let mut scores = vec![0.0f32; tokens];
    for hh in 0..heads {
        let g = hh / (heads / kv);
        for i in 0..tokens {
            let qi = &q[i * qd + hh * d..][..d];
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &k[j * kvd + g * d..][..d];
                *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
            let max = softmax::row_max(&scores);
            let total = softmax::exp_shifted_sum(&mut scores, 1.0, max);
            let oi = &mut out[i * qd + hh * d..][..d];
            for (j, p) in scores.iter().enumerate() {
                let vj = &v[j * kvd + g * d..][..d];
                for (o, vv) in oi.iter_mut().zip(vj) {
                    *o += p / total * vv;
                }
            }
        }
    }
    out
}

/// Decode attention: token `i` (one per sequence) against its sequence's `context` cached
/// keys and values; query head `hh` reads KV head `hh / (heads / kv_heads)`.
pub(crate) fn cached_attention(
    q: &[f32],
    cache: &KvCache,
    tokens: usize,
    shape: &LayerShape,
) -> Vec<f32> {
    let (d, heads, kv) = (
        shape.head_dim as usize,
        shape.heads as usize,
        shape.kv_heads as usize,
    );
    let qd = heads * d;
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0.0f32; tokens * qd];
    let mut scores = vec![0.0f32; cache.context];
    for i in 0..tokens {
        for hh in 0..heads {
            let g = hh / (heads / kv);
            let base = cache.index(shape, i, g, 0);
            let qi = &q[i * qd + hh * d..][..d];
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &cache.k[base + j * d..][..d];
                *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
            let max = softmax::row_max(&scores);
            let total = softmax::exp_shifted_sum(&mut scores, 1.0, max);
            let oi = &mut out[i * qd + hh * d..][..d];
            for (j, p) in scores.iter().enumerate() {
                let vj = &cache.v[base + j * d..][..d];
                for (o, vv) in oi.iter_mut().zip(vj) {
                    *o += p / total * vv;
                }
            }
        }
    }
    out
}

/// Checks of one stage: (actual, expected) pairs gathered across the trace.
#[derive(Default)]
struct Checks {
    actual: Vec<f64>,
    expected: Vec<f64>,
}

impl Checks {
    fn projection(&mut self, rng: &mut Rng, out: &[f32], input: &[f32], w: &[f32], cols: usize) {
        let rows = w.len() / cols;
        let tokens = out.len() / cols;
        for _ in 0..16 {
            let (t, c) = (rng.index(tokens), rng.index(cols));
            let e: f64 = (0..rows)
                .map(|r| input[t * rows + r] as f64 * w[r * cols + c] as f64)
                .sum();
            self.actual.push(out[t * cols + c] as f64);
            self.expected.push(e);
        }
    }

    fn elementwise(&mut self, rng: &mut Rng, out: &[f32], f: impl Fn(usize) -> f64) {
        for _ in 0..16 {
            let i = rng.index(out.len());
            self.actual.push(out[i] as f64);
            self.expected.push(f(i));
        }
    }
}

impl PreparedKernel for Layer {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        Ok(time_each(iterations, || self.run_once()))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once();
        let t = &self.trace;
        let w = self.layers.last().expect("at least one layer");
        let (h, qd, kvd, inter) = dims(&self.shape);
        let mut rng = Rng::new(0x1a7e);
        let mut c = Checks::default();
        let norm = |x: &[f32], i: usize| {
            let row: Vec<f64> = x[(i / h) * h..][..h].iter().map(|v| *v as f64).collect();
            x[i] as f64 * reference::rms_norm_scale(&row, LayerShape::RMS_NORM_EPSILON as f64)
        };
        c.elementwise(&mut rng, &t.h1, |i| norm(&t.x, i));
        c.projection(&mut rng, &t.q, &t.h1, &w.q, qd);
        c.projection(&mut rng, &t.k, &t.h1, &w.k, kvd);
        c.projection(&mut rng, &t.v, &t.h1, &w.v, kvd);
        if self.attention {
            let (d, heads, kv) = (
                self.shape.head_dim as usize,
                self.shape.heads as usize,
                self.shape.kv_heads as usize,
            );
            for _ in 0..4 {
                let (i, hh) = (rng.index(self.tokens), rng.index(heads));
                let g = hh / (heads / kv);
                let wide = |m: &[f32]| -> Vec<f64> { m.iter().map(|v| *v as f64).collect() };
                let rows = |m: &[f32]| -> Vec<Vec<f64>> {
                    (0..self.tokens)
                        .map(|j| wide(&m[j * kvd + g * d..][..d]))
                        .collect()
                };
                let expected = reference::attention(
                    &wide(&t.q[i * qd + hh * d..][..d]),
                    &rows(&t.k),
                    &rows(&t.v),
                );
                for (e, expected) in expected.into_iter().enumerate() {
                    c.actual.push(t.attn[i * qd + hh * d + e] as f64);
                    c.expected.push(expected);
                }
            }
        }
        if let Some(cache) = self.caches.last() {
            let (d, heads, kv) = (
                self.shape.head_dim as usize,
                self.shape.heads as usize,
                self.shape.kv_heads as usize,
            );
            // The new key and value in the cache's last slot, exactly.
            for _ in 0..8 {
                let (i, e) = (rng.index(self.tokens), rng.index(kvd));
                let at = cache.index(&self.shape, i, e / d, cache.context - 1) + e % d;
                c.actual.push(cache.k[at] as f64);
                c.expected.push(t.k[i * kvd + e] as f64);
                c.actual.push(cache.v[at] as f64);
                c.expected.push(t.v[i * kvd + e] as f64);
            }
            // Attention over the whole cache, in f64.
            for _ in 0..4 {
                let (i, hh) = (rng.index(self.tokens), rng.index(heads));
                let base = cache.index(&self.shape, i, hh / (heads / kv), 0);
                let q: Vec<f64> = t.q[i * qd + hh * d..][..d]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                let rows = |m: &[f32]| -> Vec<Vec<f64>> {
                    (0..cache.context)
                        .map(|j| m[base + j * d..][..d].iter().map(|v| *v as f64).collect())
                        .collect()
                };
                let expected = reference::attention(&q, &rows(&cache.k), &rows(&cache.v));
                for (e, x) in expected.iter().enumerate() {
                    c.actual.push(t.attn[i * qd + hh * d + e] as f64);
                    c.expected.push(*x);
                }
            }
        }
        c.projection(&mut rng, &t.o, &t.attn, &w.o, h);
        c.elementwise(&mut rng, &t.x2, |i| t.x[i] as f64 + t.o[i] as f64);
        c.elementwise(&mut rng, &t.h2, |i| norm(&t.x2, i));
        c.projection(&mut rng, &t.gate, &t.h2, &w.gate, inter);
        c.projection(&mut rng, &t.up, &t.h2, &w.up, inter);
        c.elementwise(&mut rng, &t.act, |i| {
            let g = t.gate[i] as f64;
            g / (1.0 + (-g).exp()) * t.up[i] as f64
        });
        c.projection(&mut rng, &t.down, &t.act, &w.down, h);
        c.elementwise(&mut rng, &t.y, |i| t.x2[i] as f64 + t.down[i] as f64);
        let v = compare_outputs(
            &c.actual,
            &c.expected,
            1e-4,
            "every stage (norms, 7 projections, attention rows, SwiGLU, residuals) on sampled entries vs f64",
        );
        debug_assert!(v.status != VerificationStatus::NotRun);
        Ok(v)
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            ("threads".into(), self.threads.to_string()),
            ("weights".into(), "f32, random ±1/√fan-in".into()),
            (
                "rotary_embedding".into(),
                "not applied (no FLOP-relevant effect)".into(),
            ),
        ]);
        if let Some(cache) = self.caches.first() {
            d.insert(
                "attention".into(),
                format!(
                    "each token over a KV cache of {} positions per sequence (f32), grouped KV heads",
                    cache.context
                ),
            );
        }
        d
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A layer small enough to verify exhaustively in a unit test, with grouped KV heads.
    pub(crate) const TINY: LayerShape = LayerShape {
        hidden: 64,
        heads: 8,
        kv_heads: 2,
        head_dim: 8,
        intermediate: 96,
    };

    #[test]
    fn forward_and_decode_verify_and_corruption_is_caught() {
        for (tokens, layers, attention, context) in
            [(16, 1, true, 0), (4, 2, false, 0), (3, 2, false, 37)]
        {
            let mut l =
                Layer::prepare(TINY, tokens, layers, attention, context, 2, None, 3).unwrap();
            let v = l.verify().unwrap();
            assert_eq!(v.status, VerificationStatus::Passed, "{v:?}");
        }
        let mut l = Layer::prepare(TINY, 8, 1, true, 0, 1, None, 3).unwrap();
        l.run_once();
        // A wrong down projection must be noticed by the stage checks.
        l.layers[0].down.iter_mut().for_each(|w| *w *= 1.5);
        let t = std::mem::take(&mut l.trace);
        let mut c = Checks::default();
        let mut rng = Rng::new(1);
        c.projection(&mut rng, &t.down, &t.act, &l.layers[0].down, 64);
        assert_eq!(
            compare_outputs(&c.actual, &c.expected, 1e-4, "t").status,
            VerificationStatus::Failed
        );
    }

    /// Both streaming versions (portable and AVX2+FMA where the CPU has it) agree with the
    /// GEMM path they replace for few tokens.
    #[test]
    fn streaming_projection_matches_the_gemm_path() {
        let (tokens, rows, cols) = (3, 40, 70);
        let x = random_f32(tokens * rows, -1.0, 1.0, 1);
        let w = random_f32(rows * cols, -1.0, 1.0, 2);
        let mut expected = vec![0.0f32; tokens * cols];
        matmul_f32(&mut expected, &x, &w, (tokens, cols, rows), false, 1);
        let mut portable = vec![0.0f32; tokens * cols];
        stream_band(&mut portable, &x, &w, (rows, cols, 0, cols));
        for threads in [1, 2, 3] {
            let streamed = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| project_streaming(&x, &w, tokens, cols, threads));
            for ((a, b), e) in streamed.iter().zip(&portable).zip(&expected) {
                assert!((a - e).abs() < 1e-4 && (b - e).abs() < 1e-4, "{a} {b} {e}");
            }
        }
    }

    /// The cached attention against an f64 reference written independently of it: every
    /// output of every head, with the new token's key and value in the last slot.
    #[test]
    fn cached_attention_matches_the_reference() {
        let (tokens, context) = (2, 9);
        let (d, heads, kv) = (8, 8, 2);
        let len = tokens * kv * context * d;
        let mut cache = KvCache {
            context,
            k: random_f32(len, -1.0, 1.0, 5),
            v: random_f32(len, -1.0, 1.0, 6),
        };
        let q = random_f32(tokens * heads * d, -2.0, 2.0, 7);
        let k_new = random_f32(tokens * kv * d, -1.0, 1.0, 8);
        let v_new = random_f32(tokens * kv * d, -1.0, 1.0, 9);
        cache.append(&TINY, &k_new, &v_new);
        let out = cached_attention(&q, &cache, tokens, &TINY);
        for i in 0..tokens {
            for hh in 0..heads {
                let g = hh / (heads / kv);
                let at = |m: &[f32], j: usize| -> Vec<f64> {
                    let base = ((i * kv + g) * context + j) * d;
                    m[base..][..d].iter().map(|v| *v as f64).collect()
                };
                let keys: Vec<Vec<f64>> = (0..context).map(|j| at(&cache.k, j)).collect();
                let values: Vec<Vec<f64>> = (0..context).map(|j| at(&cache.v, j)).collect();
                // The last position is the new token's.
                let new_key: Vec<f64> = k_new[(i * kv + g) * d..][..d]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                assert_eq!(keys[context - 1], new_key);
                let qh: Vec<f64> = q[(i * heads + hh) * d..][..d]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                let expected = reference::attention(&qh, &keys, &values);
                for e in 0..d {
                    let got = out[(i * heads + hh) * d + e] as f64;
                    assert!((got - expected[e]).abs() < 1e-5, "{got} {}", expected[e]);
                }
            }
        }
        // A corrupted value row moves the output: the check can fail.
        cache.v[3] += 10.0;
        let moved = cached_attention(&q, &cache, tokens, &TINY);
        assert!(moved.iter().zip(&out).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    #[test]
    fn refuses_what_cannot_fit() {
        let r = Layer::prepare(LayerShape::MISTRAL_7B, 1, 64, false, 0, 1, Some(1 << 30), 1);
        assert!(matches!(r, Err(KernelError::OutOfMemory(_))));
    }
}
