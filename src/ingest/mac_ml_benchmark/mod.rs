//! Files published by the mac-ml-benchmark project (PyTorch-MPS and MLX on Apple Silicon).
//!
//! The project wrote one JSON shape per script, so there is one importer per shape. The
//! files state little about *what* was run (layer shapes, dtypes of bandwidth buffers), so
//! every assumption made here is (a) written into the record's notes and (b) checked against
//! the rate the file itself reports: if our FLOP/byte count and the file's TFLOP/s or GB/s
//! disagree by more than [`RATE_TOLERANCE`], a warning says so.
//!
//! One file per shape: `system_info`, `benchmark_lists` (the per-framework benchmark lists),
//! `gemm_comparison`, `layer_benchmark`, `framework_comparison`, `fine_tuning`, the two-machine
//! experiments of `distributed/` (`distributed_inference`: model-level inference runs;
//! `traffic`: interface captures and their summaries), and `not_imported` (files recognised
//! and deliberately left out). This file holds what they
//! share: the record builder, the rate cross-check and the time conventions.

use super::node::Node;
use super::record::{MachineKey, Record, Timing};
use super::{FileView, ImportError, Imported, Importer, MachineInfo};
use crate::util::slug;
use silirep_core::{
    AttentionImpl, BandwidthOp, Dtype, KernelSpec, LayerPart, LayerShape, ModelPhase, Pass,
};
use std::collections::BTreeMap;

mod benchmark_lists;
mod distributed_inference;
mod fine_tuning;
mod framework_comparison;
mod gemm_comparison;
mod layer_benchmark;
mod not_imported;
pub mod system_info;
#[cfg(test)]
mod tests;
mod traffic;

use benchmark_lists::FrameworkBenchmarks;
use distributed_inference::DistributedInference;
use fine_tuning::FineTuning;
use framework_comparison::FrameworkComparison;
use gemm_comparison::GemmComparison;
use layer_benchmark::LayerBenchmark;
use not_imported::MfuSummary;
use system_info::SystemInfo;
use traffic::{FineTuneTrafficSummary, Traffic};

/// Relative difference allowed between a rate the file reports and the one we derive.
const RATE_TOLERANCE: f64 = 0.02;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The layer the project benchmarks: Mistral-7B dimensions with full multi-head K/V
/// projections (32 KV heads). The published TFLOP/s match this count, not Mistral's GQA.
const LAYER_SHAPE: LayerShape = LayerShape {
    kv_heads: 32,
    ..LayerShape::MISTRAL_7B
};

pub fn importers() -> Vec<Box<dyn Importer>> {
    vec![
        Box::new(SystemInfo),
        Box::new(FrameworkBenchmarks),
        Box::new(GemmComparison),
        Box::new(LayerBenchmark),
        Box::new(FrameworkComparison),
        Box::new(FineTuning),
        Box::new(MfuSummary),
        Box::new(Traffic),
        Box::new(FineTuneTrafficSummary),
        Box::new(DistributedInference),
    ]
}

struct RecordBuilder<'f, 'a> {
    file: &'f FileView<'a>,
    framework: String,
}

impl RecordBuilder<'_, '_> {
    fn record(&self, spec: KernelSpec, timing: Option<Timing>, json_path: &str) -> Record {
        Record {
            machine: self.file.folder_machine.clone(),
            framework: self.framework.clone(),
            spec,
            timing,
            verification: super::record::Verification::NotReported,
            error: None,
            run_id: None,
            source: self.file.provenance(json_path),
            notes: Vec::new(),
            clock: None,
            reported: BTreeMap::new(),
        }
    }
}

/// Compares a rate the file reports with ours; warns when they disagree.
fn check_rate(
    out: &mut Imported,
    file: &FileView,
    record: &Record,
    reported_name: &str,
    reported: Option<f64>,
    ours: Option<f64>,
) {
    let (Some(reported), Some(ours)) = (reported, ours) else {
        return;
    };
    if reported <= 0.0 || ours <= 0.0 {
        return;
    }
    let diff = (reported - ours).abs() / ours;
    if diff > RATE_TOLERANCE {
        out.warn(
            file,
            &record.source.json_path,
            format!(
                "the file reports {reported_name} = {reported:.4}, silirep's formula gives {ours:.4} \
                 ({:+.1}%): the source counts work differently; silirep's count is used",
                (reported / ours - 1.0) * 100.0
            ),
        );
    }
}

/// `time_ms` (+ `extra.std_ms`, `extra.iterations`) as a [`Timing`]: a mean with spread when
/// the file has it, else one value. Zero or missing times mean "not measured".
fn timing_from_ms(mean_ms: Option<f64>, std_ms: Option<f64>, n: Option<u64>) -> Option<Timing> {
    let mean_s = mean_ms.filter(|t| *t > 0.0 && t.is_finite())? / 1e3;
    match (std_ms, n) {
        (Some(std_ms), Some(n)) if n >= 2 && std_ms.is_finite() && std_ms >= 0.0 => {
            Some(Timing::Summary {
                mean_s,
                std_s: std_ms / 1e3,
                n,
            })
        }
        _ => Some(Timing::Single(mean_s)),
    }
}

/// Why a published time cannot be used, in the words that fit what the file holds.
fn no_time_reason(field: &str, value: Option<f64>) -> String {
    match value {
        None => format!("no time recorded ({field} is missing)"),
        Some(v) if v < 0.0 => format!("invalid time: {field} is negative ({v})"),
        Some(0.0) => format!("no time recorded ({field} is 0)"),
        Some(v) => format!("invalid time: {field} is {v}"),
    }
}

fn dtype_at(node: &Node) -> Result<Dtype, ImportError> {
    let text = node.str()?;
    Dtype::parse(text).ok_or_else(|| ImportError::Invalid {
        path: node.path().to_string(),
        message: format!("expected a dtype such as \"float16\", found {text:?}"),
    })
}
