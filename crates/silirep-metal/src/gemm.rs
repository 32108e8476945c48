//! `C = A·B` through MPSMatrixMultiplication, checked on sampled entries against f64 dot
//! products of the same (GPU-generated) inputs.

use super::gpu::{Gpu, Storage};
use super::mps::{GemmOptions, MatrixView};
use super::prepared::{Timed, Workload};
use super::program::Step;
use crate::numeric::{self, Checks};
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;

const SAMPLED_ENTRIES: usize = 256;

pub(crate) fn prepare<'a>(
    gpu: &'a mut Gpu,
    m: u64,
    n: u64,
    k: u64,
    dtype: Dtype,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    if dtype == Dtype::Bf16 {
        return Err(KernelError::Unsupported(
            "bf16 GEMM: this backend runs MPSMatrixMultiplication in its documented float32 \
             and float16 types only; bf16 would need MPSGraph, which it does not use yet"
                .into(),
        ));
    }
    if !matches!(dtype, Dtype::F32 | Dtype::F16) {
        return Err(KernelError::Unsupported(format!(
            "{dtype} GEMM is not available through MPSMatrixMultiplication"
        )));
    }
    let (m, n, k) = (m as usize, n as usize, k as usize);
    let es = numeric::element_bytes(dtype);
    gpu.ensure_fits(((m * k + k * n + m * n) * es) as u64, "this GEMM")?;
    // Shared storage: Apple GPUs read shared and private buffers from the same DRAM at the
    // same speed for compute-bound GEMMs, and shared lets verification read C directly.
    let a = gpu.random_buffer(m * k, dtype, Storage::Shared, seed, 1.0)?;
    let b = gpu.random_buffer(k * n, dtype, Storage::Shared, seed ^ 0xb, 1.0)?;
    let c = gpu.buffer(m * n * es, Storage::Shared)?;
    let a_view = MatrixView::dense(&a, m, k, dtype);
    let b_view = MatrixView::dense(&b, k, n, dtype);
    let c_view = MatrixView::dense(&c, m, n, dtype);
    let step = gpu.matmul(&a_view, &b_view, &c_view, GemmOptions::PLAIN)?;
    let gpu: &Gpu = gpu;
    let workload = Gemm {
        programs: vec![vec![step]],
        a,
        b,
        c,
        m,
        n,
        k,
        dtype,
        seed,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

struct Gemm {
    programs: Vec<Vec<Step>>,
    a: super::gpu::Buffer,
    b: super::gpu::Buffer,
    c: super::gpu::Buffer,
    m: usize,
    n: usize,
    k: usize,
    dtype: Dtype,
    seed: u64,
}

impl Workload for Gemm {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let (m, n, k) = (self.m, self.n, self.k);
        let rows = numeric::sample_indices(m, 16, self.seed);
        let columns = numeric::sample_indices(n, SAMPLED_ENTRIES / 16, self.seed ^ 1);
        let mut checks = Checks::default();
        let b_columns = columns
            .iter()
            .map(|&j| gpu.gather(&self.b, self.dtype, (0..k).map(|p| p * n + j)))
            .collect::<Result<Vec<_>, _>>()?;
        for &i in &rows {
            let a_row = gpu.read(&self.a, self.dtype, i * k, k)?;
            let c_row = gpu.read(&self.c, self.dtype, i * n, n)?;
            for (&j, b_column) in columns.iter().zip(&b_columns) {
                let (expected, magnitude) = numeric::dot_with_magnitude(&a_row, b_column);
                checks.dot(c_row[j], expected, magnitude);
            }
        }
        Ok(checks.finish(
            self.dtype,
            &format!(
                "{} sampled entries vs f64 reference, error relative to Σ|a·b|",
                checks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("library".into(), "MPSMatrixMultiplication".into()),
            (
                "layout".into(),
                "row-major A[m×k]·B[k×n], no transposes".into(),
            ),
            ("storage".into(), "shared".into()),
        ])
    }
}
