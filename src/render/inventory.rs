//! The inventory of a dataset: which machines, which measurements, which files were used,
//! skipped or refused, and every warning. It is the first page a user reads to know whether
//! the report above it stands on the data they expected. This module builds the view; the
//! template `inventory.md.tera` lays it out.

use crate::ingest::{Dataset, FileStatus};
use crate::util::format;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What the inventory shows; `templates/inventory.md.tera` lays it out.
#[derive(Serialize)]
pub struct InventoryView {
    pub measurement_count: usize,
    pub file_count: usize,
    pub loaded: usize,
    pub not_imported: usize,
    pub unrecognised: usize,
    pub failed: usize,
    pub warning_count: usize,
    pub machines: Vec<MachineRow>,
    /// Per machine with measurements: its kernels.
    pub kernels: Vec<MachineKernels>,
    pub files: Vec<FileRow>,
    pub captures: Vec<CaptureRow>,
    pub warnings: Vec<WarningRow>,
}

#[derive(Serialize)]
pub struct MachineRow {
    pub label: String,
    pub id: String,
    pub cpu: String,
    pub memory: String,
    pub accelerator: String,
    pub os: String,
    pub frameworks: String,
    pub measurements: usize,
}

#[derive(Serialize)]
pub struct MachineKernels {
    pub label: String,
    pub rows: Vec<KernelRow>,
}

#[derive(Serialize)]
pub struct KernelRow {
    pub kernel: String,
    pub framework: String,
    pub precisions: String,
    pub measurements: usize,
    pub failed: usize,
}

#[derive(Serialize)]
pub struct FileRow {
    pub file: String,
    pub outcome: String,
}

#[derive(Serialize)]
pub struct CaptureRow {
    pub file: String,
    pub name: String,
    pub machines: String,
    pub interface: String,
    pub samples: usize,
    pub duration: String,
    pub markers: usize,
    pub sent: String,
    pub received: String,
    pub peak: String,
    pub caveats: String,
}

#[derive(Serialize)]
pub struct WarningRow {
    pub file: String,
    pub location: String,
    pub message: String,
}

/// The inventory's view: counts, machines, kernels per machine, every file's outcome, the
/// captures and every warning.
pub fn view(dataset: &Dataset) -> InventoryView {
    let count =
        |pred: fn(&FileStatus) -> bool| dataset.files.iter().filter(|f| pred(&f.status)).count();
    let machines = dataset
        .machines
        .iter()
        .map(|(key, info)| {
            let records: Vec<_> = dataset
                .records
                .iter()
                .filter(|r| &r.machine == key)
                .collect();
            let frameworks: BTreeSet<&str> = records.iter().map(|r| r.framework.as_str()).collect();
            MachineRow {
                label: key.label.clone(),
                id: key.id.clone(),
                cpu: match (&info.cpu_model, info.cpu_cores) {
                    (Some(m), Some(c)) => format!("{m} ({c} cores)"),
                    (Some(m), None) => m.clone(),
                    _ => "—".into(),
                },
                memory: info
                    .memory_bytes
                    .map(format::bytes_binary)
                    .unwrap_or_else(|| "—".into()),
                accelerator: match (&info.accelerator, info.accelerator_compute_units) {
                    (Some(a), Some(u)) => format!("{a} ({u} compute units)"),
                    (Some(a), None) => a.clone(),
                    _ => "—".into(),
                },
                os: info.os.clone().unwrap_or_else(|| "—".into()),
                frameworks: frameworks.into_iter().collect::<Vec<_>>().join(", "),
                measurements: records.len(),
            }
        })
        .collect();
    let kernels = dataset
        .machines
        .keys()
        .filter_map(|key| {
            // (kernel, framework) → (dtypes, configurations, failed)
            let mut rows: BTreeMap<(String, String), (BTreeSet<String>, usize, usize)> =
                BTreeMap::new();
            for r in dataset.records.iter().filter(|r| &r.machine == key) {
                let row = rows
                    .entry((r.spec.name(), r.framework.clone()))
                    .or_default();
                row.0.insert(r.spec.precision_label());
                row.1 += 1;
                if r.timing.is_none() {
                    row.2 += 1;
                }
            }
            (!rows.is_empty()).then(|| MachineKernels {
                label: key.label.clone(),
                rows: rows
                    .into_iter()
                    .map(|((kernel, framework), (dtypes, n, failed))| KernelRow {
                        kernel,
                        framework,
                        precisions: dtypes.into_iter().collect::<Vec<_>>().join(", "),
                        measurements: n,
                        failed,
                    })
                    .collect(),
            })
        })
        .collect();
    let files = dataset
        .files
        .iter()
        .map(|f| FileRow {
            file: f.file.clone(),
            outcome: match &f.status {
                FileStatus::Loaded { format, records } => format!(
                    "{format}: {records} measurement{}",
                    if *records == 1 { "" } else { "s" }
                ),
                FileStatus::NotImported { format, reason } => {
                    format!("{format}: not imported — {reason}")
                }
                FileStatus::Unrecognised => "skipped: not a format silirep knows".into(),
                FileStatus::Failed { error } => format!("**failed**: {error}"),
            },
        })
        .collect();
    let captures = dataset
        .captures
        .iter()
        .map(|c| {
            let estimated = match c.totals_source {
                crate::ingest::capture::TotalsSource::Counted => "",
                crate::ingest::capture::TotalsSource::IntegratedRates => " (from rates)",
            };
            CaptureRow {
                file: c.source.file.clone(),
                name: c.name.clone(),
                machines: c
                    .machines
                    .iter()
                    .map(|m| m.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                interface: c.interface.clone().unwrap_or_else(|| "—".into()),
                samples: c.samples.len(),
                duration: c
                    .duration_s
                    .or_else(|| c.samples.last().map(|s| s.t_s))
                    .map(format::duration)
                    .unwrap_or_else(|| "—".into()),
                markers: c.markers.len(),
                sent: format!("{}{estimated}", format::si(c.send_bytes, "B")),
                received: format!("{}{estimated}", format::si(c.recv_bytes, "B")),
                peak: format::si(c.peak_bytes_per_s(), "B/s"),
                caveats: if c.caveats.is_empty() {
                    "—".to_string()
                } else {
                    c.caveats.join("; ")
                },
            }
        })
        .collect();
    InventoryView {
        measurement_count: dataset.records.len(),
        file_count: dataset.files.len(),
        loaded: count(|s| matches!(s, FileStatus::Loaded { .. })),
        not_imported: count(|s| matches!(s, FileStatus::NotImported { .. })),
        unrecognised: count(|s| matches!(s, FileStatus::Unrecognised)),
        failed: count(|s| matches!(s, FileStatus::Failed { .. })),
        warning_count: dataset.warnings.len(),
        machines,
        kernels,
        files,
        captures,
        warnings: dataset
            .warnings
            .iter()
            .map(|w| WarningRow {
                file: w.file.clone(),
                location: w.location.clone(),
                message: w.message.clone(),
            })
            .collect(),
    }
}

/// The inventory as the report's appendix (a level-2 section with level-3 and -4 headings),
/// rendered through `inventory.md.tera`.
pub fn render(dataset: &Dataset, templates: &tera::Tera) -> anyhow::Result<String> {
    super::pages::render(templates, "inventory.md.tera", &view(dataset))
}
