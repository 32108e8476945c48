//! The unit every importer produces: one measured configuration on one machine, with its
//! timing statistics exactly as the source gave them and where in the source it came from.

use silirep_core::KernelSpec;
use std::collections::BTreeMap;

/// Seconds per iteration, in the richest form the source offers. Nothing is ever invented:
/// a source with only mean/std/n stays a summary, a single value stays n = 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    Samples(Vec<f64>),
    Summary { mean_s: f64, std_s: f64, n: u64 },
    Single(f64),
}

impl Timing {
    pub fn n(&self) -> u64 {
        match self {
            Timing::Samples(s) => s.len() as u64,
            Timing::Summary { n, .. } => *n,
            Timing::Single(_) => 1,
        }
    }

    /// Median of samples, else the mean, else the single value.
    pub fn center_s(&self) -> f64 {
        match self {
            Timing::Samples(s) => silirep_core::median::median(s).unwrap_or(f64::NAN),
            Timing::Summary { mean_s, .. } => *mean_s,
            Timing::Single(v) => *v,
        }
    }

    pub fn center_method(&self) -> &'static str {
        match self {
            Timing::Samples(_) => "median",
            Timing::Summary { .. } => "mean",
            Timing::Single(_) => "single",
        }
    }
}

/// Whether a record's output was checked before it was timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verification {
    /// Checked against a reference and within tolerance (silirep's own runs).
    Passed,
    /// Checked and wrong: the rate is not a measurement of the kernel it names.
    Failed,
    /// Not reached (the configuration failed before verification).
    NotRun,
    /// The source tool does not verify its results, or does not say.
    NotReported,
}

impl Verification {
    /// `passed`, `failed`, `not_run`, `not_reported`: the words in `measurements.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Verification::Passed => "passed",
            Verification::Failed => "failed",
            Verification::NotRun => "not_run",
            Verification::NotReported => "not_reported",
        }
    }
}

/// Which machine a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct MachineKey {
    pub id: String,
    pub label: String,
}

/// Where a record came from: file (relative to the results root) and JSON path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Provenance {
    pub file: String,
    pub json_path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub machine: MachineKey,
    /// The software that ran the work: a silirep backend (`cpu`, `cuda`, `metal`) or the
    /// framework named by an imported file (`pytorch_mps`, `mlx`, `llama_cpp`).
    pub framework: String,
    pub spec: KernelSpec,
    /// `None` when the configuration failed (see `error`).
    pub timing: Option<Timing>,
    pub verification: Verification,
    pub error: Option<String>,
    pub run_id: Option<String>,
    pub source: Provenance,
    /// Assumptions made while importing (a dtype the source did not state, ...), shown with
    /// the record so nobody mistakes them for data.
    pub notes: Vec<String>,
    /// What the accelerator's clock was while the samples were taken, where the source
    /// recorded it (silirep's CUDA backend reads NVML): `1245 MHz, software power cap`.
    pub clock: Option<String>,
    /// Rates the source itself reported (`tflops`, `bandwidth_gbs`), kept to cross-check ours.
    pub reported: BTreeMap<String, f64>,
}

impl Record {
    /// A verified record of `spec` on `machine` with `samples` as its timing, for tests that
    /// build datasets by hand.
    #[cfg(test)]
    pub fn for_tests(machine: MachineKey, spec: KernelSpec, samples: Vec<f64>) -> Record {
        Record {
            machine,
            framework: "test".into(),
            spec,
            timing: Some(Timing::Samples(samples)),
            verification: Verification::Passed,
            error: None,
            run_id: None,
            source: Provenance {
                file: "test.json".into(),
                json_path: "$".into(),
            },
            notes: Vec::new(),
            clock: None,
            reported: BTreeMap::new(),
        }
    }

    pub fn flop_per_s(&self) -> Option<f64> {
        let t = self.timing.as_ref()?.center_s();
        Some(self.spec.flops()? / t)
    }

    pub fn bytes_per_s(&self) -> Option<f64> {
        let t = self.timing.as_ref()?.center_s();
        Some(self.spec.bytes()? / t)
    }

    pub fn tokens_per_s(&self) -> Option<f64> {
        let t = self.timing.as_ref()?.center_s();
        Some(self.spec.tokens()? / t)
    }
}
