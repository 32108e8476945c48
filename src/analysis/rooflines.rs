//! One roofline per machine and precision, built from that machine's own measurements: the
//! compute ceiling is the best rate of the kernels built to find it (GEMM, and the intensity
//! sweep's plain FMAs), the memory ceiling the best bandwidth of the kernels built to find it
//! (read, copy, triad, and the bandwidth the sweep sustained at low intensity). Every other
//! workload is placed at its arithmetic intensity to show which ceiling binds it.
//!
//! One roof, one ridge point: a sweep point above the GEMM or bandwidth ceilings raises the
//! roof (the page says so and names the kernel), because a roof that a measurement beats is
//! not a roof. A workload that still lands above it is explained on its row.

use super::catalog::{Catalog, Datasheet};
use crate::ingest::{Dataset, MachineKey, Record};
use silirep_core::{Dtype, KernelSpec, ModelPhase};
use silirep_model::Bound;
use std::collections::{BTreeMap, BTreeSet};

/// Where a ceiling came from, so the report can say "best of: f16 GEMM 4096, pytorch_mps".
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ceiling {
    pub value: f64,
    pub kernel: String,
    pub params: String,
    pub framework: String,
    pub file: String,
    /// Set when the intensity sweep set this ceiling above the dedicated kernels' best.
    pub note: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoofPoint {
    pub kernel: String,
    pub params: String,
    pub framework: String,
    pub intensity_flops_per_byte: f64,
    /// `None` where the work in FLOPs is unknown (a model whose size the file omits): the
    /// point still has an intensity, hence a bound, but no height.
    pub achieved_flops_per_s: Option<f64>,
    pub bound: Bound,
    /// Achieved / attainable at this intensity.
    pub roof_fraction: Option<f64>,
    /// Why the point is above its roof, where it is.
    pub above_roof: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Roofline {
    pub machine: MachineKey,
    pub precision: String,
    pub compute: Ceiling,
    pub memory: Ceiling,
    pub ridge_flops_per_byte: f64,
    pub points: Vec<RoofPoint>,
    pub datasheet: Option<Datasheet>,
    /// Best GEMM / datasheet peak for this precision.
    pub mfu: Option<f64>,
    /// Best bandwidth / datasheet bandwidth.
    pub mbu: Option<f64>,
}

fn usable(r: &Record) -> bool {
    r.timing.is_some() && r.error.is_none() && r.verification != crate::ingest::Verification::Failed
}

fn ceiling(r: &Record, value: f64) -> Ceiling {
    Ceiling {
        value,
        kernel: r.spec.name(),
        params: r.spec.params_label(),
        framework: r.framework.clone(),
        file: r.source.file.clone(),
        note: None,
    }
}

/// The higher of a dedicated kernel's ceiling and the sweep's; when the sweep wins, the note
/// says by how much it beat the dedicated kernels, so the reader knows why.
fn raised_by_sweep(
    dedicated: Option<Ceiling>,
    sweep: Option<Ceiling>,
    unit: &str,
) -> Option<Ceiling> {
    match (dedicated, sweep) {
        (Some(d), Some(mut s)) if s.value > d.value => {
            s.note = Some(format!(
                "the intensity sweep beat the best {} ({} {}, {}) by {:.0}%",
                unit,
                d.kernel,
                d.params,
                d.framework,
                (s.value / d.value - 1.0) * 100.0
            ));
            Some(s)
        }
        (Some(d), _) => Some(d),
        (None, s) => s,
    }
}

/// Highest value of `rate` among `records`; ties keep the first in load order.
fn best<'a>(
    records: impl Iterator<Item = &'a Record>,
    rate: impl Fn(&Record) -> Option<f64>,
) -> Option<Ceiling> {
    let mut best: Option<(f64, &Record)> = None;
    for r in records {
        if let Some(v) = rate(r).filter(|v| v.is_finite() && *v > 0.0)
            && best.is_none_or(|(b, _)| v > b)
        {
            best = Some((v, r));
        }
    }
    best.map(|(v, r)| ceiling(r, v))
}

/// FLOP/byte of a workload. Decode of a whole model streams every weight once per token
/// and does 2 FLOPs per weight, so its intensity is 2 / (bytes per weight) even when the
/// file does not say how large the model is.
pub fn intensity(spec: &KernelSpec) -> Option<f64> {
    if let KernelSpec::Model {
        phase: ModelPhase::Decode,
        batch,
        precision,
        ..
    } = spec
    {
        let bytes_per_weight = precision_bytes(precision)?;
        return Some(2.0 * (*batch).max(1) as f64 / bytes_per_weight);
    }
    spec.arithmetic_intensity()
}

/// Bytes per weight for precision strings other tools write (`float16`, `4-bit quantized`,
/// `4-bit (Q4_K_M mixed)`).
fn precision_bytes(precision: &str) -> Option<f64> {
    if let Some(d) = Dtype::parse(precision) {
        return Some(d.size_bytes());
    }
    let lower = precision.to_ascii_lowercase();
    if lower.contains("4-bit") || lower.contains("q4") {
        return Some(0.5);
    }
    if lower.contains("8-bit") || lower.contains("q8") {
        return Some(1.0);
    }
    None
}

pub fn rooflines(dataset: &Dataset, catalog: &Catalog) -> Vec<Roofline> {
    let mut out = Vec::new();
    for (machine, info) in &dataset.machines {
        let records: Vec<&Record> = dataset
            .records
            .iter()
            .filter(|r| &r.machine == machine && usable(r))
            .collect();
        // Memory does not care about the element type: one ceiling per machine, from the
        // kernels that read (write-only bandwidth can exceed what reads sustain).
        let bandwidth_kernels = best(
            records.iter().copied().filter(|r| {
                matches!(
                    r.spec.name().as_str(),
                    "bandwidth_read" | "bandwidth_copy" | "bandwidth_triad"
                )
            }),
            Record::bytes_per_s,
        );
        // The sweep's bandwidth at each point is achieved FLOP/s over its FLOP/byte; its
        // low-intensity points are memory-bound and measure what the machine streams.
        let sweep_bandwidth = best(
            records
                .iter()
                .copied()
                .filter(|r| r.spec.family() == silirep_core::KernelFamily::IntensitySweep),
            |r| Some(r.flop_per_s()? / r.spec.arithmetic_intensity()?),
        );
        let Some(memory) = raised_by_sweep(bandwidth_kernels, sweep_bandwidth, "bandwidth kernel")
        else {
            continue;
        };
        let precisions: BTreeSet<String> = records
            .iter()
            .filter(|r| r.spec.family() == silirep_core::KernelFamily::Gemm)
            .map(|r| r.spec.precision_label())
            .collect();
        let datasheet = catalog.find(&info.label, info.accelerator.as_deref());
        for precision in precisions {
            let same_precision = |r: &&&Record| r.spec.precision_label() == precision;
            let gemm = best(
                records
                    .iter()
                    .filter(same_precision)
                    .copied()
                    .filter(|r| r.spec.family() == silirep_core::KernelFamily::Gemm),
                Record::flop_per_s,
            );
            let sweep = best(
                records
                    .iter()
                    .filter(same_precision)
                    .copied()
                    .filter(|r| r.spec.family() == silirep_core::KernelFamily::IntensitySweep),
                Record::flop_per_s,
            );
            let Some(compute) = raised_by_sweep(gemm, sweep, "GEMM") else {
                continue;
            };
            let ridge = silirep_model::ridge_point_flops_per_byte(compute.value, memory.value);
            let mut points = Vec::new();
            for r in records.iter().filter(same_precision) {
                if r.spec.family() == silirep_core::KernelFamily::Bandwidth {
                    continue;
                }
                let Some(i) = intensity(&r.spec).filter(|i| i.is_finite() && *i > 0.0) else {
                    continue;
                };
                let achieved = r.flop_per_s();
                let roof_fraction = achieved
                    .map(|a| silirep_model::roof_fraction(a, i, compute.value, memory.value));
                points.push(RoofPoint {
                    kernel: r.spec.name(),
                    params: r.spec.params_label(),
                    framework: r.framework.clone(),
                    intensity_flops_per_byte: i,
                    achieved_flops_per_s: achieved,
                    bound: silirep_model::bound(i, compute.value, memory.value),
                    above_roof: roof_fraction
                        .filter(|f| *f > ABOVE_ROOF_TOLERANCE)
                        .map(|_| above_roof_reason(r)),
                    roof_fraction,
                });
            }
            let peak = datasheet
                .as_ref()
                .and_then(|d| d.peak_flops_per_s.get(&precision).copied());
            out.push(Roofline {
                machine: machine.clone(),
                precision: precision.clone(),
                mfu: peak.map(|p| compute.value / p),
                mbu: datasheet
                    .as_ref()
                    .and_then(|d| d.bandwidth_bytes_per_s)
                    .map(|b| memory.value / b),
                compute,
                memory: memory.clone(),
                ridge_flops_per_byte: ridge,
                points,
                datasheet: datasheet.clone(),
            });
        }
    }
    out
}

/// Rates within half a percent of the roof are on it: samples of one run scatter that much.
const ABOVE_ROOF_TOLERANCE: f64 = 1.005;

/// Why a workload can land above the roof its machine's dedicated kernels measured.
fn above_roof_reason(r: &Record) -> String {
    if r.notes.iter().any(|n| n.contains("assumed")) {
        "above the roof: its work is counted from an assumed shape (see the record's notes), \
         so its rate may be overstated"
            .into()
    } else {
        "above the roof: it ran faster than the kernels that set the ceilings (a shared \
         machine drifting, or caches serving part of its traffic)"
            .into()
    }
}

/// Machines and precisions that have a roofline, for lookups by the verdicts.
pub fn index(rooflines: &[Roofline]) -> BTreeMap<(MachineKey, String), &Roofline> {
    rooflines
        .iter()
        .map(|r| ((r.machine.clone(), r.precision.clone()), r))
        .collect()
}
