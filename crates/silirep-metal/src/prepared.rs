//! The one `PreparedKernel` implementation: every Metal workload is a rotation of programs
//! plus a check of its output, and this type does the timing and bookkeeping for all of them.

use super::gpu::Gpu;
use super::program::Step;
use silirep_core::schema::{Topology, Verification};
use silirep_core::{KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// Each command buffer should keep the GPU busy at least this long, so the fixed cost of
/// starting one (tens of microseconds) stays a small fraction of what is timed.
const MIN_COMMAND_BUFFER_S: f64 = 2e-3;
const MAX_REPEATS: u32 = 256;

pub(crate) trait Workload {
    /// Programs run in turn, one per iteration. More than one where the inputs rotate
    /// between buffer sets so a cache cannot serve an iteration from the previous one.
    fn programs(&self) -> &[Vec<Step>];

    /// Compares the output of `programs()[0]`, just run, with an independent reference.
    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError>;

    /// How the work is done (algorithm, launch shape), for the results file.
    fn details(&self) -> BTreeMap<String, String>;

    /// The devices and links a transfer involves; `None` for work on the GPU alone.
    fn topology(&self, _gpu: &Gpu) -> Option<Topology> {
        None
    }
}

pub(crate) struct Timed<'a, W> {
    gpu: &'a Gpu,
    workload: W,
    repeats: u32,
    next: usize,
}

impl<'a, W: Workload> Timed<'a, W> {
    /// Sizes the command buffers: runs the first program twice (the first run pays for
    /// first-touch page mapping) and packs enough repeats per command buffer to reach
    /// [`MIN_COMMAND_BUFFER_S`].
    pub fn new(gpu: &'a Gpu, workload: W) -> Result<Self, KernelError> {
        let programs = workload.programs();
        let probe = gpu.time(programs, 0, 2, 1)?;
        let single_s = probe[1].max(1e-7);
        let repeats = ((MIN_COMMAND_BUFFER_S / single_s).ceil() as u32).clamp(1, MAX_REPEATS);
        Ok(Timed {
            gpu,
            workload,
            repeats,
            next: 0,
        })
    }
}

impl<W: Workload> PreparedKernel for Timed<'_, W> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let programs = self.workload.programs();
        let times = self
            .gpu
            .time(programs, self.next, iterations, self.repeats)?;
        self.next += (iterations * self.repeats) as usize;
        Ok(times)
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.gpu.run_once(&self.workload.programs()[0])?;
        self.workload.check(self.gpu)
    }

    fn topology(&self) -> Option<Topology> {
        self.workload.topology(self.gpu)
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut details = self.workload.details();
        details.insert(
            "timing".into(),
            "GPU timestamps (MTLCommandBuffer GPUEndTime − GPUStartTime)".into(),
        );
        details.insert(
            "iterations_per_command_buffer".into(),
            self.repeats.to_string(),
        );
        if self.repeats > 1 {
            details.insert(
                "timing_note".into(),
                format!(
                    "short kernel: {} iterations encoded per command buffer, its GPU time \
                     divided evenly among them",
                    self.repeats
                ),
            );
        }
        let rotation = self.workload.programs().len();
        if rotation > 1 {
            details.insert("buffer_sets_rotated".into(), rotation.to_string());
        }
        details
    }
}
