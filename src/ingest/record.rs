//! The unit every importer produces: one measured configuration on one machine, with its
//! timing statistics exactly as the source gave them and where in the source it came from;
//! and, for silirep's own files, the run it belongs to ([`RunInfo`]).

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

impl MachineKey {
    /// The key a machine labelled `label` gets when nothing else identifies it (id: the
    /// label's slug), for tests that build datasets by hand.
    #[cfg(test)]
    pub fn for_tests(label: &str) -> MachineKey {
        MachineKey {
            id: crate::util::slug(label),
            label: label.into(),
        }
    }
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

/// One silirep run: when it started and what its numbers depend on besides the hardware, so
/// a machine's runs can be ordered in time and what changed between two of them named.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub machine: MachineKey,
    /// The run file, relative to the results root.
    pub file: String,
    /// RFC 3339 UTC, as the file gives it (sorts in time order).
    pub started_at: String,
    /// By name: `silirep`, `backend`, `driver`, `runtime`, `os`, `kernel`, `power limit (W)`,
    /// `suite`, `warm-up (s)`, each backend library under its own name.
    pub facts: BTreeMap<String, String>,
}

impl RunInfo {
    /// `name: old → new` for each fact that differs from `earlier` (added or removed facts
    /// show `—`), in name order.
    pub fn changes_since(&self, earlier: &RunInfo) -> Vec<String> {
        let names: std::collections::BTreeSet<&String> =
            self.facts.keys().chain(earlier.facts.keys()).collect();
        names
            .into_iter()
            .filter_map(|name| {
                let (before, after) = (earlier.facts.get(name), self.facts.get(name));
                (before != after).then(|| {
                    format!(
                        "{name}: {} → {}",
                        before.map_or("—", String::as_str),
                        after.map_or("—", String::as_str)
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_runs_name_each_fact_that_moved() {
        let run = |facts: &[(&str, &str)]| RunInfo {
            run_id: "r".into(),
            machine: MachineKey {
                id: "m".into(),
                label: "M".into(),
            },
            file: "r.json".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            facts: facts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let before = run(&[
            ("driver", "580"),
            ("silirep", "0.1.0"),
            ("power limit (W)", "700"),
        ]);
        let after = run(&[
            ("driver", "590"),
            ("silirep", "0.1.0"),
            ("cublasLt", "13.1.0"),
        ]);
        assert_eq!(
            after.changes_since(&before),
            [
                "cublasLt: — → 13.1.0",
                "driver: 580 → 590",
                "power limit (W): 700 → —"
            ]
        );
        assert!(before.changes_since(&before).is_empty());
    }
}
