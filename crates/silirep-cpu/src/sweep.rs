//! Arithmetic-intensity sweep: load each f32, apply `f` dependent multiply-adds, store it.
//! Traffic is fixed (one read, one write per element) while work grows with `f`, so the
//! achieved FLOP/s trace the roofline from the memory slope to the compute ceiling.

use crate::common::{Rng, time_each, try_alloc, try_random_f32, x86_fma_available};
use rayon::prelude::*;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// Contraction towards a fixed point keeps values bounded for any chain length.
const A: f32 = 0.999;
const B: f32 = 0.001;
/// Independent chains per step: enough vectors in flight to hide FMA latency (4 cycles × 2
/// ports × 8 lanes on AVX2 = 64 floats).
const LANES: usize = 64;

pub struct Sweep {
    data: Vec<f32>,
    original: Vec<f32>,
    fmas: u32,
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Sweep {
    pub fn prepare(
        elements: u64,
        fmas: u64,
        threads: usize,
        seed: u64,
    ) -> Result<Self, KernelError> {
        let fmas = u32::try_from(fmas).map_err(|_| {
            KernelError::Unsupported(format!(
                "{fmas} FMAs per element: the sweep counts at most {} per element",
                u32::MAX
            ))
        })?;
        let data = try_random_f32(elements as usize, 0.5, 1.5, seed, "sweep data")?;
        let mut original = try_alloc(data.len(), 0.0, "sweep reference copy")?;
        original.copy_from_slice(&data);
        Ok(Sweep {
            original,
            data,
            fmas,
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| KernelError::Backend(e.to_string()))?,
            threads,
        })
    }

    fn run_once(&mut self) {
        let fmas = self.fmas;
        let data = &mut self.data;
        let fused = x86_fma_available();
        self.pool.install(|| {
            data.par_chunks_mut(1 << 14).for_each(|part| {
                if fused {
                    // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        chains_avx2_fma(part, fmas)
                    }
                } else {
                    chains(part, fmas)
                }
            })
        });
    }
}

/// `fmas` dependent steps `x ← x·A + B` on every element, LANES independent chains at a time.
#[inline(always)]
fn chain_body(part: &mut [f32], fmas: u32, step: impl Fn(f32) -> f32) {
    let mut blocks = part.chunks_exact_mut(LANES);
    for blk in &mut blocks {
        let mut acc = [0.0f32; LANES];
        acc.copy_from_slice(blk);
        for _ in 0..fmas {
            for a in acc.iter_mut() {
                *a = step(*a);
            }
        }
        blk.copy_from_slice(&acc);
    }
    for x in blocks.into_remainder() {
        for _ in 0..fmas {
            *x = step(*x);
        }
    }
}

/// Portable version: fused where the base instruction set has FMA (aarch64), otherwise a
/// separate multiply and add (still two FLOPs per step).
fn chains(part: &mut [f32], fmas: u32) {
    if cfg!(target_arch = "aarch64") {
        chain_body(part, fmas, |a| a.mul_add(A, B))
    } else {
        chain_body(part, fmas, |a| a * A + B)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains_avx2_fma(part: &mut [f32], fmas: u32) {
    chain_body(part, fmas, |a| a.mul_add(A, B))
}

impl PreparedKernel for Sweep {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        Ok(time_each(iterations, || self.run_once()))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        // Start from known data so one pass can be recomputed exactly.
        self.data.copy_from_slice(&self.original);
        self.run_once();
        let mut rng = Rng::new(0x5ee);
        let picks: Vec<usize> = (0..256).map(|_| rng.index(self.data.len())).collect();
        let actual: Vec<f64> = picks.iter().map(|&i| self.data[i] as f64).collect();
        let expected: Vec<f64> = picks
            .iter()
            .map(|&i| {
                let mut x = self.original[i] as f64;
                for _ in 0..self.fmas {
                    x = x * A as f64 + B as f64;
                }
                x
            })
            .collect();
        Ok(compare_outputs(
            &actual,
            &expected,
            1e-5,
            "256 sampled elements vs an f64 recomputation of the chain",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("threads".into(), self.threads.to_string()),
            ("independent_chains".into(), LANES.to_string()),
            (
                "instructions".into(),
                if x86_fma_available() || cfg!(target_arch = "aarch64") {
                    "fused multiply-add"
                } else {
                    "multiply + add"
                }
                .into(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::VerificationStatus;

    #[test]
    fn chains_verify_and_a_wrong_length_fails() {
        let mut s = Sweep::prepare(10_000, 32, 2, 1).unwrap();
        assert_eq!(s.verify().unwrap().status, VerificationStatus::Passed);
        s.data.copy_from_slice(&s.original);
        s.fmas = 31;
        s.run_once();
        s.fmas = 32;
        let v = compare_outputs(
            &[s.data[0] as f64],
            &[{
                let mut x = s.original[0] as f64;
                for _ in 0..32 {
                    x = x * A as f64 + B as f64;
                }
                x
            }],
            1e-5,
            "t",
        );
        assert_eq!(v.status, VerificationStatus::Failed);
    }
}
