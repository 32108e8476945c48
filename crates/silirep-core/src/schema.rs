//! Results schema v1: the JSON file `silirep measure` writes, one per run.
//!
//! The file is the contract between measuring and reporting: a report is rebuilt from these
//! files alone, so everything a reader needs to judge a number (machine, backend, settings,
//! every per-iteration sample, the verification outcome) is in it. Documented field by field
//! in `docs/results-schema.md`; the JSON Schema that `silirep schema` prints is
//! `schema/run-v1.schema.json`.

use crate::kernels::KernelSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Value of the `schema` field, so a reader can recognise a silirep run among other JSON.
pub const SCHEMA_NAME: &str = "silirep.run";
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of a v1 run file.
pub const JSON_SCHEMA_V1: &str = include_str!("../schema/run-v1.schema.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    /// Always [`SCHEMA_NAME`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`] for this layout.
    pub schema_version: u32,
    /// Unique per run: `<machine id>-<UTC start time>-<random suffix>`.
    pub run_id: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; `None` while the run is still going (or was interrupted before the end).
    pub finished_at: Option<String>,
    /// `completed`, `interrupted` (Ctrl-C) or `running`.
    pub status: RunStatus,
    pub tool: Tool,
    pub machine: Machine,
    pub backend: BackendInfo,
    pub settings: Settings,
    pub measurements: Vec<Measurement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Stable across runs on the same machine: derived from the OS machine id (or hostname)
    /// and the CPU model, never from anything that changes between boots.
    pub id: String,
    /// Human name shown in reports (`--label`, else the accelerator or CPU name).
    pub label: String,
    pub cpu: Cpu,
    pub memory_bytes: Option<u64>,
    pub os: Os,
    /// `None` for CPU-only runs.
    pub accelerator: Option<Accelerator>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cpu {
    pub model: String,
    pub architecture: String,
    /// Physical cores when the OS says, else logical CPUs.
    pub cores: Option<u32>,
    pub threads: Option<u32>,
    /// Apple Silicon splits cores into performance and efficiency clusters.
    pub performance_cores: Option<u32>,
    pub efficiency_cores: Option<u32>,
    /// Cache levels by name (`l1d`, `l2`, `l3`) in bytes; per core or shared as the OS
    /// reports it.
    pub caches_bytes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Os {
    pub name: String,
    pub version: String,
    pub kernel: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Accelerator {
    pub name: String,
    pub vendor: String,
    /// SMs on NVIDIA, GPU cores on Apple.
    pub compute_units: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// Memory shared with the CPU (Apple Silicon).
    pub unified_memory: Option<bool>,
    pub driver_version: Option<String>,
    /// CUDA runtime/driver API version, Metal family, ...
    pub runtime_version: Option<String>,
    /// Anything else the backend reports (clocks, compute capability, working-set size).
    pub details: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `cpu`, `cuda`, `metal`.
    pub name: String,
    /// Libraries the numbers depend on, with versions (`cublasLt` → `13.0.0`).
    pub libraries: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub suite: String,
    /// The harness stops adding repetitions once the 95% CI half-width of the median is under
    /// this fraction of the median...
    pub target_relative_ci: f64,
    /// ...or once this much time was spent timing one configuration.
    pub max_time_per_config_s: f64,
    pub min_samples: u32,
    pub max_samples: u32,
    pub warmup_iterations: u32,
    /// After the warm-up iterations, the kernel keeps running untimed for this long, so timing
    /// starts at sustained clocks (absent in files from before it existed: 0).
    #[serde(default)]
    pub warmup_time_s: f64,
    /// Command-line selection as given (kernels, dtypes, sizes), for the record.
    pub selection: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            suite: "standard".into(),
            target_relative_ci: 0.01,
            max_time_per_config_s: 2.0,
            min_samples: 10,
            max_samples: 1000,
            warmup_iterations: 3,
            warmup_time_s: 1.0,
            selection: BTreeMap::new(),
        }
    }
}

/// One configuration's outcome: samples if it ran and verified, an error if not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    #[serde(flatten)]
    pub spec: KernelSpec,
    /// From [`KernelSpec::flops`], stored so readers without silirep see the work counted.
    pub flops: Option<f64>,
    /// From [`KernelSpec::bytes`].
    pub bytes: Option<f64>,
    /// Seconds per iteration, one entry per timed iteration, in the order measured.
    pub samples_s: Vec<f64>,
    pub warmup_iterations: u32,
    pub verification: Verification,
    /// Set when the configuration could not be measured; `samples_s` is then empty.
    pub error: Option<MeasurementError>,
    /// Backend-specific facts about how it ran (chosen cuBLASLt algorithm, threads, ...).
    pub details: BTreeMap<String, String>,
    /// For a measurement across devices (a peer copy, a host transfer, a collective): which
    /// devices took part and how the driver says they are linked. Absent for single-device
    /// kernels and in files from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
}

/// The devices of a multi-device measurement and the links between them, as the driver
/// reports them (not as a datasheet says they should be).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Topology {
    pub devices: Vec<TopologyDevice>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TopologyDevice {
    /// `host`, or the GPU's ordinal as the backend numbers it (`0`, `1`, ...).
    pub id: String,
    pub name: String,
    /// PCI address (`0000:18:00.0`) where known: it names the same GPU whatever order tools
    /// enumerate devices in.
    pub pci_bus_id: Option<String>,
}

/// One link between two [`TopologyDevice`]s, by their `id`s.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Link {
    pub from: String,
    pub to: String,
    /// `nvlink`, `pcie`, `unified_memory`, or `unknown` where the driver does not say.
    pub kind: String,
    /// Short form as `nvidia-smi topo -m` writes it (`NV18`, `PIX`, `SYS`), or a PCIe link
    /// as `PCIe gen 5 x16`.
    pub label: String,
    /// Everything the driver reported about the link (NVLink count and version, P2P access,
    /// PCIe generation and width, current and maximum), and which call reported it.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub status: VerificationStatus,
    /// What was compared, e.g. `256 sampled entries vs f64 reference`.
    pub method: String,
    pub max_abs_error: Option<f64>,
    pub max_rel_error: Option<f64>,
    pub tolerance: Option<f64>,
}

impl Verification {
    pub fn not_run(reason: &str) -> Self {
        Verification {
            status: VerificationStatus::NotRun,
            method: reason.to_string(),
            max_abs_error: None,
            max_rel_error: None,
            tolerance: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    Passed,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    OutOfMemory,
    Unsupported,
    VerificationFailed,
    Interrupted,
    Backend,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Dtype, KernelSpec};

    pub(crate) fn sample_run() -> RunFile {
        let spec = KernelSpec::Gemm {
            m: 64,
            n: 64,
            k: 64,
            dtype: Dtype::F32,
        };
        RunFile {
            schema: SCHEMA_NAME.into(),
            schema_version: SCHEMA_VERSION,
            run_id: "m-20260101T000000Z-abcd".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: Some("2026-01-01T00:00:05Z".into()),
            status: RunStatus::Completed,
            tool: Tool {
                name: "silirep".into(),
                version: "0.1.0".into(),
            },
            machine: Machine {
                id: "m".into(),
                label: "Test machine".into(),
                ..Default::default()
            },
            backend: BackendInfo {
                name: "cpu".into(),
                libraries: BTreeMap::new(),
            },
            settings: Settings::default(),
            measurements: vec![Measurement {
                flops: spec.flops(),
                bytes: spec.bytes(),
                spec,
                samples_s: vec![1e-3, 1.1e-3],
                warmup_iterations: 3,
                verification: Verification {
                    status: VerificationStatus::Passed,
                    method: "all entries vs f64 reference".into(),
                    max_abs_error: Some(1e-6),
                    max_rel_error: Some(1e-7),
                    tolerance: Some(1e-4),
                },
                error: None,
                details: BTreeMap::new(),
                topology: None,
            }],
        }
    }

    #[test]
    fn run_file_round_trips() {
        let run = sample_run();
        let text = serde_json::to_string_pretty(&run).unwrap();
        let back: RunFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, run);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["measurements"][0]["kernel"], "gemm");
        assert_eq!(value["measurements"][0]["params"]["m"], 64);
    }

    #[test]
    fn json_schema_is_valid_json_and_names_the_kernels() {
        let schema: serde_json::Value = serde_json::from_str(JSON_SCHEMA_V1).unwrap();
        assert_eq!(schema["properties"]["schema"]["const"], SCHEMA_NAME);
        let text = JSON_SCHEMA_V1;
        for kernel in [
            "gemm",
            "bandwidth",
            "attention",
            "layer",
            "decode",
            "intensity_sweep",
            "model",
            "peer_copy",
            "host_transfer",
            "collective",
            "network",
        ] {
            assert!(text.contains(&format!("\"{kernel}\"")), "{kernel} missing");
        }
    }
}
