//! STREAM-style read, write, copy and triad over f64 or f32 arrays, split across threads.
//!
//! Like STREAM's static OpenMP schedule, each thread owns one contiguous part of every array
//! (hardware prefetchers see one long stream per core) and first-touches it in `prepare`, so
//! on NUMA systems pages land near the core that streams them. Arrays are at least 4× the last-level cache
//! (the suite sizes them), so every iteration goes to DRAM.

use crate::common::{Rng, time_each, try_alloc};
use rayon::prelude::*;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{BandwidthOp, KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// The triad scalar; any value works, a non-trivial one keeps the multiply honest.
const Q: f64 = 3.0;

pub struct Bandwidth {
    op: BandwidthOp,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    pool: rayon::ThreadPool,
    threads: usize,
    /// Elements per thread: `threads` contiguous parts per array.
    part_len: usize,
    last_sum: f64,
    write_value: f64,
    /// Tests set this to prove verification catches a wrong kernel.
    inject_fault: bool,
}

impl Bandwidth {
    pub fn prepare(
        op: BandwidthOp,
        array_bytes: u64,
        threads: usize,
        seed: u64,
    ) -> Result<Self, KernelError> {
        let n = (array_bytes / 8) as usize;
        if n == 0 {
            return Err(KernelError::Unsupported("array of 0 elements".into()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| KernelError::Backend(e.to_string()))?;
        let arrays = op.arrays_touched() as usize;
        let part_len = n.div_ceil(threads.max(1));
        let mut a = try_alloc(n, 0.0f64, "bandwidth array a")?;
        let mut b = if arrays >= 2 {
            try_alloc(n, 0.0f64, "bandwidth array b")?
        } else {
            Vec::new()
        };
        let mut c = if arrays >= 3 {
            try_alloc(n, 0.0f64, "bandwidth array c")?
        } else {
            Vec::new()
        };
        pool.install(|| {
            for (index, v) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
                v.par_chunks_mut(part_len)
                    .enumerate()
                    .for_each(|(chunk, part)| {
                        let mut rng = Rng::new(seed ^ ((index as u64) << 56) ^ chunk as u64);
                        for x in part.iter_mut() {
                            *x = rng.uniform(0.5, 1.5);
                        }
                    });
            }
        });
        Ok(Bandwidth {
            op,
            a,
            b,
            c,
            pool,
            threads,
            part_len,
            last_sum: 0.0,
            write_value: 1.0,
            inject_fault: false,
        })
    }

    fn run_once(&mut self) {
        let (a, b, c) = (&mut self.a, &mut self.b, &mut self.c);
        let len = self.part_len;
        match self.op {
            BandwidthOp::Read => {
                self.last_sum = self.pool.install(|| {
                    a.par_chunks(len)
                        .map(|part| {
                            // Eight partial sums so the adds pipeline and vectorise.
                            let mut acc = [0.0f64; 8];
                            let mut blocks = part.chunks_exact(8);
                            for blk in &mut blocks {
                                for (s, x) in acc.iter_mut().zip(blk) {
                                    *s += x;
                                }
                            }
                            acc.iter().sum::<f64>() + blocks.remainder().iter().sum::<f64>()
                        })
                        .sum()
                });
            }
            BandwidthOp::Write => {
                // A new value every iteration, so no store can be skipped as redundant.
                self.write_value += 1.0;
                let v = self.write_value;
                self.pool
                    .install(|| a.par_chunks_mut(len).for_each(|part| part.fill(v)));
            }
            BandwidthOp::Copy => self.pool.install(|| {
                b.par_chunks_mut(len)
                    .zip(a.par_chunks(len))
                    .for_each(|(dst, src)| dst.copy_from_slice(src))
            }),
            BandwidthOp::Triad => self.pool.install(|| {
                a.par_chunks_mut(len)
                    .zip(b.par_chunks(len).zip(c.par_chunks(len)))
                    .for_each(|(dst, (x, y))| {
                        for ((d, x), y) in dst.iter_mut().zip(x).zip(y) {
                            *d = x + Q * y;
                        }
                    })
            }),
        }
        if self.inject_fault {
            self.a[0] += 1.0;
            let last = self.a.len() - 1;
            self.a[last / 2] += 1.0;
            self.last_sum += 1.0;
        }
    }
}

impl PreparedKernel for Bandwidth {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        Ok(time_each(iterations, || self.run_once()))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once();
        let mut rng = Rng::new(0xb1d);
        let picks: Vec<usize> = (0..256).map(|_| rng.index(self.a.len())).collect();
        Ok(match self.op {
            BandwidthOp::Read => {
                let reference: f64 = self.a.iter().sum();
                compare_outputs(
                    &[self.last_sum],
                    &[reference],
                    1e-9,
                    "sum of the array vs a sequential f64 sum",
                )
            }
            BandwidthOp::Write => {
                let actual: Vec<f64> = picks.iter().map(|&i| self.a[i]).collect();
                compare_outputs(
                    &actual,
                    &vec![self.write_value; picks.len()],
                    0.0,
                    "256 sampled entries hold the written value",
                )
            }
            BandwidthOp::Copy => {
                let actual: Vec<f64> = picks.iter().map(|&i| self.b[i]).collect();
                let expected: Vec<f64> = picks.iter().map(|&i| self.a[i]).collect();
                compare_outputs(
                    &actual,
                    &expected,
                    0.0,
                    "256 sampled entries equal the source",
                )
            }
            BandwidthOp::Triad => {
                let actual: Vec<f64> = picks.iter().map(|&i| self.a[i]).collect();
                let expected: Vec<f64> = picks.iter().map(|&i| self.b[i] + Q * self.c[i]).collect();
                compare_outputs(&actual, &expected, 0.0, "256 sampled entries equal b + q·c")
            }
        })
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("threads".into(), self.threads.to_string()),
            ("element".into(), "f64".into()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::VerificationStatus;

    #[test]
    fn every_op_verifies_and_an_injected_fault_fails() {
        for op in BandwidthOp::ALL {
            let mut k = Bandwidth::prepare(op, 1 << 20, 2, 7).unwrap();
            assert_eq!(k.time(2).unwrap().len(), 2);
            assert_eq!(
                k.verify().unwrap().status,
                VerificationStatus::Passed,
                "{op:?}"
            );
        }
        for op in [BandwidthOp::Read, BandwidthOp::Triad] {
            let mut k = Bandwidth::prepare(op, 64 * 8, 1, 7).unwrap();
            k.inject_fault = true;
            assert_eq!(
                k.verify().unwrap().status,
                VerificationStatus::Failed,
                "{op:?}"
            );
        }
    }
}
