//! The one seam every backend (CPU, CUDA, Metal) implements.
//!
//! A backend only allocates, launches and times work and checks its output; the harness
//! decides how often, when to stop and what to record. That split keeps warm-up, repetition,
//! stopping and verification rules identical across backends.

use crate::kernels::KernelSpec;
use crate::schema::{
    Accelerator, BackendInfo, ErrorKind, MeasurementError, Topology, Verification,
};
use std::collections::BTreeMap;

/// Why a configuration could not run. Recorded in the result, never fatal to the run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("{0}")]
    Backend(String),
}

impl KernelError {
    /// What every device backend answers for network kernels: those cross a link to another
    /// machine and are measured by the front end's link client (`silirep measure --peer`).
    pub fn network_needs_peer() -> KernelError {
        KernelError::Unsupported(
            "network transfers are measured with `silirep measure --peer HOST:PORT` against \
             `silirep link serve` on the other machine"
                .into(),
        )
    }

    pub fn to_measurement_error(&self) -> MeasurementError {
        let (kind, message) = match self {
            KernelError::Unsupported(m) => (ErrorKind::Unsupported, m),
            KernelError::OutOfMemory(m) => (ErrorKind::OutOfMemory, m),
            KernelError::Backend(m) => (ErrorKind::Backend, m),
        };
        MeasurementError {
            kind,
            message: message.clone(),
        }
    }
}

pub trait Backend {
    /// `cpu`, `cuda`, `metal`: the name written to results and accepted by `--backend`.
    fn name(&self) -> &'static str;

    /// Library versions the numbers depend on.
    fn info(&self) -> BackendInfo;

    /// The device this backend runs on; `None` for the CPU.
    fn accelerator(&self) -> Option<Accelerator>;

    /// Bytes of the last-level cache in front of the memory this backend measures (CPU L3,
    /// GPU L2, Apple SLC), so bandwidth buffers can be sized at ≥ 4× it.
    fn last_level_cache_bytes(&self) -> Option<u64>;

    /// Memory this backend can allocate, to skip configurations that cannot fit.
    fn memory_bytes(&self) -> Option<u64>;

    /// The configurations this backend measures in `suite`, sized for its hardware (a CPU
    /// attention runs at shorter sequences than a GPU one). The front end filters this list by
    /// the user's `--kernels`, `--dtypes` and `--sizes`; it never invents configurations.
    fn suite(&self, suite: Suite) -> Vec<KernelSpec>;

    /// Allocates and fills (with random, non-zero data) everything `spec` needs.
    fn prepare<'a>(
        &'a mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError>;
}

/// How much to measure: `quick` is a smoke run (under a minute on two CPU cores),
/// `standard` the default, `full` every size the backend supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suite {
    Quick,
    Standard,
    Full,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Quick => "quick",
            Suite::Standard => "standard",
            Suite::Full => "full",
        }
    }
}

/// A configuration ready to run: inputs allocated and filled.
pub trait PreparedKernel {
    /// Runs `iterations` iterations and returns the time of each in seconds, measured with the
    /// device's own clock (CUDA events, Metal GPU timestamps, a monotonic clock on the CPU).
    /// Backends that cannot time single short launches may time a group and return the
    /// group's time divided evenly; they say so in [`PreparedKernel::details`].
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError>;

    /// Called once, right before the timed samples start (after warm-up and verification):
    /// backends that record what the device was doing while timed start recording here.
    fn begin_timing(&mut self) {}

    /// Runs once more and compares the output with a reference computed independently.
    fn verify(&mut self) -> Result<Verification, KernelError>;

    /// How the kernel was run: algorithm chosen, threads, launch shape.
    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// The devices a multi-device kernel used and the links between them; `None` for a
    /// kernel on the backend's one device.
    fn topology(&self) -> Option<Topology> {
        None
    }
}
