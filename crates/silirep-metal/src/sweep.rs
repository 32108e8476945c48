//! The arithmetic-intensity sweep: fixed traffic, `fmas_per_element` dependent FMAs per
//! element, checked by replaying the chain in f64 on sampled elements.

use super::gpu::{Buffer, Gpu, Storage};
use super::prepared::{Timed, Workload};
use super::program::{Dispatch, GpuParams, Grid, Step};
use crate::numeric::{self, Checks};
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// |m| < 1 makes x → a/(1 − m) a contraction, so long chains neither overflow nor lose all
/// dependence on the input (which the check relies on for short chains).
const MULTIPLIER: f32 = 0.999;
const ADDEND: f32 = 0.001;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SweepParams {
    vector_count: u32,
    fmas_per_element: u32,
    multiplier: f32,
    addend: f32,
}
// SAFETY: four 4-byte fields, mirrors SweepParams in intensity_sweep.metal.
unsafe impl GpuParams for SweepParams {}

pub(crate) fn prepare<'a>(
    gpu: &'a mut Gpu,
    elements: u64,
    fmas_per_element: u64,
    dtype: Dtype,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    if dtype != Dtype::F32 {
        return Err(KernelError::Unsupported(format!(
            "the intensity sweep kernel is f32 only, not {dtype}"
        )));
    }
    if !elements.is_multiple_of(4) || elements == 0 {
        return Err(KernelError::Unsupported(format!(
            "elements {elements} is not a positive multiple of 4 (one float4)"
        )));
    }
    let vector_count = u32::try_from(elements / 4)
        .map_err(|_| KernelError::Unsupported(format!("{elements} elements is too many")))?;
    let fmas = u32::try_from(fmas_per_element)
        .map_err(|_| KernelError::Unsupported(format!("{fmas_per_element} FMAs per element")))?;
    let elements = elements as usize;
    gpu.ensure_fits(2 * 4 * elements as u64, "the sweep's input and output")?;
    // Shared storage: the check reads sampled elements directly; the sweep's point is the
    // compute-bound end, where storage mode does not matter.
    let input = gpu.random_buffer(elements, dtype, Storage::Shared, seed, 1.0)?;
    let output = gpu.buffer(elements * 4, Storage::Shared)?;
    let params = SweepParams {
        vector_count,
        fmas_per_element: fmas,
        multiplier: MULTIPLIER,
        addend: ADDEND,
    };
    let dispatch = Dispatch::new(
        gpu.pipeline("intensity_sweep_f32")?,
        vec![(input.clone(), 0), (output.clone(), 0)],
        &params,
        Grid::threads_1d(vector_count as usize),
    )?;
    let gpu: &Gpu = gpu;
    let workload = Sweep {
        programs: vec![vec![Step::Compute(dispatch)]],
        input,
        output,
        elements,
        fmas: fmas_per_element,
        seed,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

struct Sweep {
    programs: Vec<Vec<Step>>,
    input: Buffer,
    output: Buffer,
    elements: usize,
    fmas: u64,
    seed: u64,
}

impl Workload for Sweep {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let mut checks = Checks::default();
        for i in numeric::sample_indices(self.elements, 256, self.seed) {
            // Replayed in f32 with IEEE fused multiply-adds (f32::mul_add), the arithmetic
            // the kernel is asked for, so a correct GPU agrees to within rounding-mode
            // differences while a chain of the wrong length does not.
            let mut x = gpu.read(&self.input, Dtype::F32, i, 1)?[0] as f32;
            for _ in 0..self.fmas {
                x = x.mul_add(MULTIPLIER, ADDEND);
            }
            checks.element(gpu.read(&self.output, Dtype::F32, i, 1)?[0], f64::from(x));
        }
        Ok(checks.finish(
            Dtype::F32,
            "256 sampled elements vs the FMA chain replayed on the CPU (f32 FMA)",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "vector_width".into(),
                "float4 (four independent chains per thread)".into(),
            ),
            (
                "chain".into(),
                format!("x = fma(x, {MULTIPLIER}, {ADDEND})"),
            ),
        ])
    }
}
