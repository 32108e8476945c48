//! Writes N synthetic run files for load-testing `silirep report` (docs/PERFORMANCE.md).
//! The numbers are generated, not measured: every file says so in its settings, and none of
//! them belongs in a results/ directory.
//!
//! usage: cargo run --release --example generate_results -- <dir> <count>

use silirep_core::schema::*;
use silirep_core::{BandwidthOp, Dtype, KernelSpec};
use std::collections::BTreeMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: generate_results <dir> <count>"));
    let count: usize = args
        .next()
        .and_then(|c| c.parse().ok())
        .expect("a file count");
    // A fixed linear congruential generator: the same files on every machine.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..count {
        let machine = i % 10;
        let specs = [
            KernelSpec::Gemm {
                m: 1024,
                n: 1024,
                k: 1024,
                dtype: Dtype::F32,
            },
            KernelSpec::Gemm {
                m: 2048,
                n: 2048,
                k: 2048,
                dtype: Dtype::F32,
            },
            KernelSpec::Bandwidth {
                op: BandwidthOp::Triad,
                array_bytes: 1 << 28,
                dtype: Dtype::F64,
            },
            KernelSpec::Bandwidth {
                op: BandwidthOp::Read,
                array_bytes: 1 << 28,
                dtype: Dtype::F64,
            },
        ];
        let measurements = specs
            .iter()
            .map(|spec| {
                let base = 1e-3 * (1.0 + machine as f64) * (1.0 + spec.primary_size() as f64 / 1e6);
                Measurement {
                    flops: spec.flops(),
                    bytes: spec.bytes(),
                    spec: spec.clone(),
                    samples_s: (0..20).map(|_| base * (1.0 + 0.02 * next())).collect(),
                    warmup_iterations: 1,
                    verification: Verification {
                        status: VerificationStatus::Passed,
                        method: "synthetic".into(),
                        max_abs_error: None,
                        max_rel_error: None,
                        tolerance: None,
                    },
                    error: None,
                    details: BTreeMap::new(),
                    topology: None,
                }
            })
            .collect();
        let run = RunFile {
            schema: SCHEMA_NAME.into(),
            schema_version: SCHEMA_VERSION,
            run_id: format!("synthetic-{machine}-{i:06}"),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: Some("2026-01-01T00:00:01Z".into()),
            status: RunStatus::Completed,
            tool: Tool {
                name: "silirep".into(),
                version: "synthetic".into(),
            },
            machine: Machine {
                id: format!("synthetic-{machine}"),
                label: format!("Synthetic machine {machine}"),
                ..Default::default()
            },
            backend: BackendInfo {
                name: "cpu".into(),
                libraries: BTreeMap::new(),
            },
            settings: Settings {
                suite: "synthetic (generated, not measured)".into(),
                ..Settings::default()
            },
            measurements,
        };
        let sub = dir.join(format!("synthetic-{machine}"));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("{}.json", run.run_id)),
            serde_json::to_vec(&run).unwrap(),
        )
        .unwrap();
    }
}
