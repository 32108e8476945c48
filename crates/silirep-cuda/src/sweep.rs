//! Arithmetic-intensity sweep: load each f32, apply `f` dependent multiply-adds, store it.
//! Traffic is fixed (one read, one write per element) while work grows with `f`, so the
//! achieved FLOP/s trace the roofline from the HBM slope to the FP32 ceiling.

use crate::device::{Buffer, Gpu, driver_error};
use crate::host::{ElemType, Rng};
use cudarc::driver::PushKernelArg;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// Contraction towards a fixed point keeps values bounded for any chain length.
const A: f32 = 0.999;
const B: f32 = 0.001;

pub struct Sweep<'a> {
    gpu: &'a Gpu,
    data: Buffer,
    elements: u64,
    fmas: u32,
    seed: u64,
    group: u32,
}

impl<'a> Sweep<'a> {
    pub fn prepare(
        gpu: &'a Gpu,
        elements: u64,
        fmas: u64,
        seed: u64,
    ) -> Result<Sweep<'a>, KernelError> {
        if !elements.is_multiple_of(4) || elements == 0 {
            return Err(KernelError::Unsupported(format!(
                "{elements} elements: the sweep kernel reads float4, so a positive multiple of 4 is needed"
            )));
        }
        let data = gpu.alloc(elements as usize * 4, "sweep data")?;
        gpu.fill(data.ptr, elements as usize, ElemType::F32, 1.0, seed)?;
        let mut sweep = Sweep {
            gpu,
            data,
            elements,
            fmas: fmas as u32,
            seed,
            group: 1,
        };
        sweep.group = gpu.group_for(|| sweep.run_once())?;
        Ok(sweep)
    }

    fn run_once(&self) -> Result<(), KernelError> {
        let f = self.gpu.function("intensity_sweep")?;
        let n4 = self.elements / 4;
        let mut launch = self.gpu.stream.launch_builder(f);
        launch
            .arg(&self.data.ptr)
            .arg(&n4)
            .arg(&self.fmas)
            .arg(&A)
            .arg(&B);
        // SAFETY: (data, n4, fmas, a, b) as in sweep.cu; data holds `elements` floats.
        unsafe { launch.launch(self.gpu.persistent_grid(8, 256)) }.map_err(driver_error)?;
        Ok(())
    }
}

impl PreparedKernel for Sweep<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        self.gpu.time(iterations, self.group, || self.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        // Start from known data so one pass can be recomputed exactly.
        self.gpu.fill(
            self.data.ptr,
            self.elements as usize,
            ElemType::F32,
            1.0,
            self.seed,
        )?;
        let mut rng = Rng::new(0x5ee);
        let picks = rng.distinct(self.elements as usize, 256);
        let original: Vec<f64> = picks
            .iter()
            .map(|&i| Ok(self.gpu.download(self.data.ptr, ElemType::F32, i, 1)?[0]))
            .collect::<Result<_, KernelError>>()?;
        self.run_once()?;
        let actual: Vec<f64> = picks
            .iter()
            .map(|&i| Ok(self.gpu.download(self.data.ptr, ElemType::F32, i, 1)?[0]))
            .collect::<Result<_, KernelError>>()?;
        let expected: Vec<f64> = original
            .iter()
            .map(|&x0| (0..self.fmas).fold(x0, |x, _| x * A as f64 + B as f64))
            .collect();
        Ok(compare_outputs(
            &actual,
            &expected,
            1e-5,
            "256 sampled elements vs an f64 recomputation of the chain",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            (
                "independent_chains_per_thread".into(),
                "4 (float4 lanes)".into(),
            ),
            (
                "grid".into(),
                format!(
                    "{} SMs × 8 blocks × 256 threads, grid-stride",
                    self.gpu.info.sm_count
                ),
            ),
        ]);
        d.extend(crate::device::grouped_timing_detail(self.group, "launches"));
        d
    }
}
