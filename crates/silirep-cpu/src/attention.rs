//! Scaled dot-product attention, f32, non-causal (causal configurations are refused in lib.rs),
//! layout [batch·heads, seq, head_dim].
//!
//! Naive: S = Q·Kᵀ materialised per head (GEMM), row softmax, O = P·V (GEMM).
//! Fused: blocks of query rows walk blocks of keys with an online softmax (running max and
//! sum, FlashAttention's recurrence), so the S×S score matrix never exists in memory.

use crate::common::{Rng, matmul_f32, matmul_f32_accumulate, time_each, try_alloc, try_random_f32};
use crate::softmax;
use rayon::prelude::*;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{AttentionImpl, KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// Query rows per fused task.
const BLOCK: usize = 256;
/// Keys per fused step. With 256 query rows, each step's two GEMMs are large enough to
/// amortise the GEMM library's per-call packing (64×64 tiles spent most of their time there);
/// the 256 KiB score tile stays within a modern core's L2. Chosen by measurement: 128×512,
/// 256×128 and 256×512 were within 5% of it, 64×64 was 20% slower.
const KEY_BLOCK: usize = 256;

pub struct Attention {
    implementation: AttentionImpl,
    heads: usize,
    seq: usize,
    dim: usize,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    out: Vec<f32>,
    scores: Vec<f32>,
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Attention {
    pub fn prepare(
        implementation: AttentionImpl,
        batch_heads: u64,
        seq: u64,
        dim: u64,
        threads: usize,
        seed: u64,
    ) -> Result<Self, KernelError> {
        if implementation == AttentionImpl::Unspecified {
            return Err(KernelError::Unsupported(
                "attention needs `naive` or `fused`".into(),
            ));
        }
        let (heads, seq, dim) = (batch_heads as usize, seq as usize, dim as usize);
        let len = heads * seq * dim;
        let scores = if implementation == AttentionImpl::Naive {
            // One score matrix per thread-parallel head.
            try_alloc(heads * seq * seq, 0.0f32, "attention scores")?
        } else {
            Vec::new()
        };
        Ok(Attention {
            implementation,
            heads,
            seq,
            dim,
            q: try_random_f32(len, -1.0, 1.0, seed, "attention Q")?,
            k: try_random_f32(len, -1.0, 1.0, seed ^ 1, "attention K")?,
            v: try_random_f32(len, -1.0, 1.0, seed ^ 2, "attention V")?,
            out: try_alloc(len, 0.0f32, "attention output")?,
            scores,
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| KernelError::Backend(e.to_string()))?,
            threads,
        })
    }

    fn run_once(&mut self) {
        let (s, d) = (self.seq, self.dim);
        let scale = 1.0 / (d as f32).sqrt();
        let (q, k, v) = (&self.q, &self.k, &self.v);
        match self.implementation {
            AttentionImpl::Naive => {
                let scores = &mut self.scores;
                let out = &mut self.out;
                self.pool.install(|| {
                    scores
                        .par_chunks_mut(s * s)
                        .zip(out.par_chunks_mut(s * d))
                        .enumerate()
                        .for_each(|(h, (sc, o))| {
                            let range = h * s * d..(h + 1) * s * d;
                            matmul_f32(
                                sc,
                                &q[range.clone()],
                                &k[range.clone()],
                                (s, s, d),
                                true,
                                1,
                            );
                            for row in sc.chunks_mut(s) {
                                softmax_in_place(row, scale);
                            }
                            matmul_f32(o, sc, &v[range], (s, d, s), false, 1);
                        })
                });
            }
            AttentionImpl::Fused => {
                let out = &mut self.out;
                self.pool.install(|| {
                    // Heads, then blocks of BLOCK query rows within each head (the last
                    // block of a head may be shorter): any sequence length works.
                    out.par_chunks_mut(s * d)
                        .enumerate()
                        .for_each(|(h, o_head)| {
                            let head = h * s * d..(h + 1) * s * d;
                            let (q_head, k_head, v_head) =
                                (&q[head.clone()], &k[head.clone()], &v[head]);
                            o_head
                                .par_chunks_mut(BLOCK * d)
                                .zip(q_head.par_chunks(BLOCK * d))
                                .for_each(|(o, q_blk)| {
                                    fused_block(o, q_blk, k_head, v_head, d, scale)
                                });
                        })
                });
            }
            AttentionImpl::Unspecified => unreachable!("refused in prepare"),
        }
    }

    /// f64 reference output for one (head, row).
    fn reference_row(&self, h: usize, i: usize) -> Vec<f64> {
        let (s, d) = (self.seq, self.dim);
        let base = h * s * d;
        let scale = 1.0 / (d as f64).sqrt();
        let q = &self.q[base + i * d..][..d];
        let logits: Vec<f64> = (0..s)
            .map(|j| {
                let kj = &self.k[base + j * d..][..d];
                q.iter()
                    .zip(kj)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        (0..d)
            .map(|c| {
                (0..s)
                    .map(|j| weights[j] * self.v[base + j * d + c] as f64)
                    .sum::<f64>()
                    / total
            })
            .collect()
    }
}

fn softmax_in_place(row: &mut [f32], scale: f32) {
    let max = softmax::row_max(row) * scale;
    let inv = 1.0 / softmax::exp_shifted_sum(row, scale, max);
    row.iter_mut().for_each(|x| *x *= inv);
}

/// Online-softmax attention for a block of query rows against all keys, one key block at a
/// time (scores live only in a BLOCK×KEY_BLOCK tile).
fn fused_block(o: &mut [f32], q: &[f32], k: &[f32], v: &[f32], d: usize, scale: f32) {
    let rows = q.len() / d;
    let keys = k.len() / d;
    let mut max = vec![f32::NEG_INFINITY; rows];
    let mut sum = vec![0.0f32; rows];
    let mut tile = vec![0.0f32; rows * KEY_BLOCK];
    o.fill(0.0);
    for kb in (0..keys).step_by(KEY_BLOCK) {
        let cols = KEY_BLOCK.min(keys - kb);
        let kt = &k[kb * d..(kb + cols) * d];
        let vt = &v[kb * d..(kb + cols) * d];
        matmul_f32(&mut tile, q, kt, (rows, cols, d), true, 1);
        for r in 0..rows {
            let t = &mut tile[r * cols..(r + 1) * cols];
            let new_max = max[r].max(softmax::row_max(t) * scale);
            let correction = softmax::exp(max[r] - new_max);
            sum[r] = sum[r] * correction + softmax::exp_shifted_sum(t, scale, new_max);
            max[r] = new_max;
            // The running output is rescaled to the new max before this tile's P·V is added;
            // once a row's max has settled there is nothing to do.
            if correction != 1.0 {
                o[r * d..(r + 1) * d]
                    .iter_mut()
                    .for_each(|x| *x *= correction);
            }
        }
        matmul_f32_accumulate(o, &tile[..rows * cols], vt, (rows, d, cols));
    }
    for r in 0..rows {
        let inv = 1.0 / sum[r];
        o[r * d..(r + 1) * d].iter_mut().for_each(|x| *x *= inv);
    }
}

impl PreparedKernel for Attention {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        Ok(time_each(iterations, || self.run_once()))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once();
        let mut rng = Rng::new(0xa77);
        let mut actual = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..4 {
            let (h, i) = (rng.index(self.heads), rng.index(self.seq));
            expected.extend(self.reference_row(h, i));
            let base = (h * self.seq + i) * self.dim;
            actual.extend(self.out[base..base + self.dim].iter().map(|x| *x as f64));
        }
        Ok(compare_outputs(
            &actual,
            &expected,
            1e-4,
            "4 sampled query rows vs an f64 softmax(QKᵀ/√d)·V",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("threads".into(), self.threads.to_string()),
            ("tile".into(), format!("{BLOCK} queries × {KEY_BLOCK} keys")),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::VerificationStatus;

    #[test]
    fn naive_and_fused_agree_with_the_reference() {
        for imp in [AttentionImpl::Naive, AttentionImpl::Fused] {
            let mut a = Attention::prepare(imp, 3, 128, 32, 2, 5).unwrap();
            let v = a.verify().unwrap();
            assert_eq!(v.status, VerificationStatus::Passed, "{imp:?} {v:?}");
        }
        // A length that is no multiple of the block sizes: a short last block of queries
        // and of keys.
        let mut odd = Attention::prepare(AttentionImpl::Fused, 2, 300, 32, 2, 5).unwrap();
        let v = odd.verify().unwrap();
        assert_eq!(v.status, VerificationStatus::Passed, "seq 300 {v:?}");
        for (h, i) in [(0, 0), (1, 255), (1, 256), (1, 299)] {
            let expected = odd.reference_row(h, i);
            let actual = &odd.out[(h * 300 + i) * 32..][..32];
            for (a, e) in actual.iter().zip(&expected) {
                assert!((*a as f64 - e).abs() < 1e-4, "head {h} row {i}: {a} vs {e}");
            }
        }
        assert!(Attention::prepare(AttentionImpl::Unspecified, 1, 64, 16, 1, 5).is_err());
    }
}
