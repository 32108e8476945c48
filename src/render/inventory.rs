//! A plain Markdown inventory of a dataset: which machines, which measurements, which files
//! were used, skipped or refused, and every warning. It is the first page a user reads to
//! know whether the report below it stands on the data they expected.

use crate::ingest::{Dataset, FileStatus};
use crate::util::format;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Markdown-safe table cell: pipes escaped, newlines flattened.
fn cell(text: &str) -> String {
    crate::util::format::markdown_text(text)
}

/// The inventory as the report's appendix: a level-2 section with level-3 and -4 headings.
pub fn render(dataset: &Dataset) -> String {
    let mut md = String::new();
    let count =
        |pred: fn(&FileStatus) -> bool| dataset.files.iter().filter(|f| pred(&f.status)).count();
    let loaded = count(|s| matches!(s, FileStatus::Loaded { .. }));
    let not_imported = count(|s| matches!(s, FileStatus::NotImported { .. }));
    let unrecognised = count(|s| matches!(s, FileStatus::Unrecognised));
    let failed = count(|s| matches!(s, FileStatus::Failed { .. }));
    let _ = writeln!(md, "## Inventory\n");
    let _ = writeln!(
        md,
        "{} measurements from {} files: {loaded} loaded, {not_imported} recognised with nothing \
         to import, {unrecognised} unrecognised, {failed} failed. {} warnings.\n",
        dataset.records.len(),
        dataset.files.len(),
        dataset.warnings.len()
    );

    let _ = writeln!(md, "### Machines\n");
    let _ = writeln!(
        md,
        "| Machine | Id | CPU | Memory | Accelerator | OS | Frameworks | Measurements |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---:|");
    for (key, info) in &dataset.machines {
        let records: Vec<_> = dataset
            .records
            .iter()
            .filter(|r| &r.machine == key)
            .collect();
        let frameworks: BTreeSet<&str> = records.iter().map(|r| r.framework.as_str()).collect();
        let cpu = match (&info.cpu_model, info.cpu_cores) {
            (Some(m), Some(c)) => format!("{m} ({c} cores)"),
            (Some(m), None) => m.clone(),
            _ => "—".into(),
        };
        let accelerator = match (&info.accelerator, info.accelerator_compute_units) {
            (Some(a), Some(u)) => format!("{a} ({u} compute units)"),
            (Some(a), None) => a.clone(),
            _ => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} |",
            cell(&key.label),
            cell(&key.id),
            cell(&cpu),
            info.memory_bytes
                .map(format::bytes_binary)
                .unwrap_or_else(|| "—".into()),
            cell(&accelerator),
            cell(info.os.as_deref().unwrap_or("—")),
            cell(&frameworks.into_iter().collect::<Vec<_>>().join(", ")),
            records.len()
        );
    }

    let _ = writeln!(md, "\n### Measurements per kernel\n");
    for key in dataset.machines.keys() {
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
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(md, "#### {}\n", cell(&key.label));
        let _ = writeln!(
            md,
            "| Kernel | Framework | Precision | Measurements | Failed |"
        );
        let _ = writeln!(md, "|---|---|---|---:|---:|");
        for ((kernel, framework), (dtypes, n, failed)) in rows {
            let _ = writeln!(
                md,
                "| {kernel} | {} | {} | {n} | {failed} |",
                cell(&framework),
                cell(&dtypes.into_iter().collect::<Vec<_>>().join(", "))
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "### Files\n");
    let _ = writeln!(md, "| File | Outcome |");
    let _ = writeln!(md, "|---|---|");
    for f in &dataset.files {
        let outcome = match &f.status {
            FileStatus::Loaded { format, records } => format!(
                "{format}: {records} measurement{}",
                if *records == 1 { "" } else { "s" }
            ),
            FileStatus::NotImported { format, reason } => {
                format!("{format}: not imported — {reason}")
            }
            FileStatus::Unrecognised => "skipped: not a format silirep knows".into(),
            FileStatus::Failed { error } => format!("**failed**: {error}"),
        };
        let _ = writeln!(md, "| `{}` | {} |", cell(&f.file), cell(&outcome));
    }

    if !dataset.captures.is_empty() {
        let _ = writeln!(md, "\n### Captures\n");
        let _ = writeln!(
            md,
            "Time series kept for charts, not measurements: traffic on a link sampled while a \
             job ran.\n"
        );
        let _ = writeln!(
            md,
            "| File | Capture | Machines | Interface | Samples | Duration | Markers | Sent | Received | Peak | Caveats |"
        );
        let _ = writeln!(md, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|");
        for c in &dataset.captures {
            let machines: Vec<&str> = c.machines.iter().map(|m| m.label.as_str()).collect();
            let estimated = match c.totals_source {
                crate::ingest::capture::TotalsSource::Counted => "",
                crate::ingest::capture::TotalsSource::IntegratedRates => " (from rates)",
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} | {} | {}{estimated} | {}{estimated} | {} | {} |",
                cell(&c.source.file),
                cell(&c.name),
                cell(&machines.join(", ")),
                cell(c.interface.as_deref().unwrap_or("—")),
                c.samples.len(),
                c.duration_s
                    .or_else(|| c.samples.last().map(|s| s.t_s))
                    .map(format::duration)
                    .unwrap_or_else(|| "—".into()),
                c.markers.len(),
                format::si(c.send_bytes, "B"),
                format::si(c.recv_bytes, "B"),
                format::si(c.peak_bytes_per_s(), "B/s"),
                cell(&if c.caveats.is_empty() {
                    "—".to_string()
                } else {
                    c.caveats.join("; ")
                })
            );
        }
    }

    if !dataset.warnings.is_empty() {
        let _ = writeln!(md, "\n### Warnings\n");
        for w in &dataset.warnings {
            let _ = writeln!(
                md,
                "- `{}` ({}): {}",
                cell(&w.file),
                cell(&w.location),
                cell(&w.message)
            );
        }
    }
    md
}
