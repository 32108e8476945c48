//! GEMM through the `gemm` crate (f32, f16), verified on sampled entries against f64 dot
//! products of the same inputs.

use crate::common::{
    Rng, matmul_f16, matmul_f32, reference_entry, time_each, try_alloc, try_random_f32,
};
use gemm::f16;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;

enum Operands {
    F32 {
        a: Vec<f32>,
        b: Vec<f32>,
        c: Vec<f32>,
    },
    F16 {
        a: Vec<f16>,
        b: Vec<f16>,
        c: Vec<f16>,
    },
}

pub struct Gemm {
    m: usize,
    n: usize,
    k: usize,
    threads: usize,
    operands: Operands,
    inject_fault: bool,
}

impl Gemm {
    pub fn prepare(
        m: u64,
        n: u64,
        k: u64,
        dtype: Dtype,
        threads: usize,
        seed: u64,
    ) -> Result<Self, KernelError> {
        let (m, n, k) = (m as usize, n as usize, k as usize);
        // Sizes come from the command line: an element count past usize is out of memory
        // too, not an overflow.
        let elements = |rows: usize, cols: usize, what: &str| {
            rows.checked_mul(cols).ok_or_else(|| {
                KernelError::OutOfMemory(format!("{what}: {rows}×{cols} elements overflow"))
            })
        };
        let (mk, kn, mn) = (
            elements(m, k, "A")?,
            elements(k, n, "B")?,
            elements(m, n, "C")?,
        );
        let a = try_random_f32(mk, -1.0, 1.0, seed, "GEMM operand A")?;
        let b = try_random_f32(kn, -1.0, 1.0, seed ^ 0xb, "GEMM operand B")?;
        let operands = match dtype {
            Dtype::F32 => Operands::F32 {
                a,
                b,
                c: try_alloc(mn, 0.0, "GEMM result C")?,
            },
            Dtype::F16 => Operands::F16 {
                a: a.iter().map(|x| f16::from_f32(*x)).collect(),
                b: b.iter().map(|x| f16::from_f32(*x)).collect(),
                c: try_alloc(mn, f16::from_f32(0.0), "GEMM result C")?,
            },
            other => {
                return Err(KernelError::Unsupported(format!(
                    "{other} GEMM: the CPU backend's gemm crate implements f32 and f16 only"
                )));
            }
        };
        Ok(Gemm {
            m,
            n,
            k,
            threads,
            operands,
            inject_fault: false,
        })
    }

    fn run_once(&mut self) {
        let shape = (self.m, self.n, self.k);
        match &mut self.operands {
            Operands::F32 { a, b, c } => matmul_f32(c, a, b, shape, false, self.threads),
            Operands::F16 { a, b, c } => matmul_f16(c, a, b, shape, self.threads),
        }
        if self.inject_fault {
            match &mut self.operands {
                Operands::F32 { c, .. } => c.iter_mut().for_each(|x| *x += 0.5),
                Operands::F16 { c, .. } => c
                    .iter_mut()
                    .for_each(|x| *x = f16::from_f32(x.to_f32() + 0.5)),
            }
        }
    }
}

impl PreparedKernel for Gemm {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        Ok(time_each(iterations, || self.run_once()))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once();
        let mut rng = Rng::new(0x6e33);
        let picks: Vec<(usize, usize)> = (0..256)
            .map(|_| (rng.index(self.m), rng.index(self.n)))
            .collect();
        let (actual, expected, tolerance): (Vec<f64>, Vec<f64>, f64) = match &self.operands {
            Operands::F32 { a, b, c } => (
                picks
                    .iter()
                    .map(|&(i, j)| c[i * self.n + j] as f64)
                    .collect(),
                picks
                    .iter()
                    .map(|&(i, j)| reference_entry(a, b, i, j, self.k, self.n))
                    .collect(),
                // Rounding error of a k-term f32 sum grows like √k·ε (values are O(1)).
                8.0 * f32::EPSILON as f64 * (self.k as f64).sqrt(),
            ),
            Operands::F16 { a, b, c } => {
                let a32: Vec<f32> = a.iter().map(|x| x.to_f32()).collect();
                let b32: Vec<f32> = b.iter().map(|x| x.to_f32()).collect();
                (
                    picks
                        .iter()
                        .map(|&(i, j)| c[i * self.n + j].to_f64())
                        .collect(),
                    picks
                        .iter()
                        .map(|&(i, j)| reference_entry(&a32, &b32, i, j, self.k, self.n))
                        .collect(),
                    // Output rounded to f16 (ε = 2⁻¹⁰), plus accumulation error growing like √k.
                    2f64.powi(-10) * (self.k as f64).sqrt().max(1.0),
                )
            }
        };
        // The rounding error of a dot product scales with the size of its terms, not of its
        // result: an entry that nearly cancels to 0.3 carries the error of its neighbours
        // of size 15. compare_outputs bounds |error| by tolerance·max(1, |expected|), so the
        // tolerance is scaled by the typical entry size (RMS of the sampled references).
        let typical = (expected.iter().map(|e| e * e).sum::<f64>() / expected.len() as f64)
            .sqrt()
            .max(1.0);
        Ok(compare_outputs(
            &actual,
            &expected,
            tolerance * typical,
            "256 sampled entries vs f64 dot products of the same inputs",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("threads".into(), self.threads.to_string()),
            ("library".into(), "gemm crate".into()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::VerificationStatus;

    #[test]
    fn f32_and_f16_verify_and_bf16_is_unsupported() {
        for dtype in [Dtype::F32, Dtype::F16] {
            let mut g = Gemm::prepare(96, 80, 200, dtype, 2, 1).unwrap();
            let v = g.verify().unwrap();
            assert_eq!(v.status, VerificationStatus::Passed, "{dtype:?} {v:?}");
            g.inject_fault = true;
            assert_eq!(g.verify().unwrap().status, VerificationStatus::Failed);
        }
        assert!(matches!(
            Gemm::prepare(8, 8, 8, Dtype::Bf16, 1, 1),
            Err(KernelError::Unsupported(_))
        ));
    }
}
