//! Machine-vs-machine ratios for every configuration both machines measured.
//!
//! Records are paired by configuration *and* by the script that produced them (the source
//! file's name for imported results), so a GEMM timed by one script on machine A is compared
//! with the same script's GEMM on machine B — never with another script's number for the
//! same size. The same configuration measured twice on one machine stays two rows.

use super::{RateEstimate, observations};
use crate::ingest::{Dataset, MachineKey, Record};
use rayon::prelude::*;
use silirep_stats::RatioEstimate;
use std::collections::BTreeMap;

/// What must match for two records to be compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ConfigKey {
    pub family: silirep_core::KernelFamily,
    pub kernel: String,
    pub precision: String,
    /// Sort key before the label so sizes order numerically.
    pub primary_size: u64,
    pub params: String,
    /// The framework that ran an imported result (`mlx`, `pytorch_mps`); `silirep` for
    /// silirep's own runs whatever their backend, because the backend is how silirep drives
    /// that machine, and comparing machines is the point.
    pub framework: String,
    /// Source file name for imported results (`pytorch_mps_benchmarks.json`); empty for
    /// silirep's own runs, whose file names are run ids.
    pub script: String,
}

impl ConfigKey {
    pub fn of(record: &Record) -> ConfigKey {
        let script = if record.run_id.is_some() {
            String::new()
        } else {
            record
                .source
                .file
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        ConfigKey {
            family: record.spec.family(),
            kernel: record.spec.name(),
            precision: record.spec.precision_label(),
            primary_size: record.spec.primary_size(),
            params: record.spec.params_label(),
            framework: if record.run_id.is_some() {
                "silirep".to_string()
            } else {
                record.framework.clone()
            },
            script,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Side {
    pub rate: RateEstimate,
    /// The record's own framework or backend (`cuda`, `mlx`), which the key may generalise.
    pub framework: String,
    pub file: String,
    pub json_path: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ComparisonRow {
    pub key: ConfigKey,
    pub a: Side,
    pub b: Side,
    /// How many times faster A is than B (rate A / rate B), with its 95% CI when both sides
    /// have a spread.
    pub speedup: RatioEstimate,
    /// Cross-file checks that put either side in doubt (see `ingest::cross_checks`).
    pub caveats: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FamilySummary {
    pub family: silirep_core::KernelFamily,
    pub rows: usize,
    pub geomean: silirep_stats::GeoMean,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: MachineKey,
    pub b: MachineKey,
    pub rows: Vec<ComparisonRow>,
    pub families: Vec<FamilySummary>,
}

type Indexed<'a> = (&'a Record, &'a RateEstimate);

/// Every pair of machines (in label order) with at least one configuration in common.
/// `rates` is aligned with `dataset.records`.
pub fn compare_machines(dataset: &Dataset, rates: &[Option<RateEstimate>]) -> Vec<Comparison> {
    let mut by_machine: BTreeMap<&MachineKey, BTreeMap<ConfigKey, Vec<Indexed>>> = BTreeMap::new();
    for (r, rate) in dataset.records.iter().zip(rates) {
        let Some(rate) = rate else {
            continue;
        };
        by_machine
            .entry(&r.machine)
            .or_default()
            .entry(ConfigKey::of(r))
            .or_default()
            .push((r, rate));
    }
    // A newer silirep run of a configuration supersedes older ones in comparisons (run ids
    // start with the machine id and the UTC start time, so they sort by time); the machine
    // pages still list every run.
    for configs in by_machine.values_mut() {
        for (key, records) in configs.iter_mut() {
            if key.script.is_empty()
                && let Some(latest) = records
                    .iter()
                    .max_by(|x, y| x.0.run_id.cmp(&y.0.run_id))
                    .copied()
            {
                *records = vec![latest];
            }
        }
    }
    let mut machines: Vec<&MachineKey> = by_machine.keys().copied().collect();
    machines.sort_by(|x, y| (&x.label, &x.id).cmp(&(&y.label, &y.id)));
    let pairs: Vec<(&MachineKey, &MachineKey)> = machines
        .iter()
        .enumerate()
        .flat_map(|(i, a)| machines[i + 1..].iter().map(move |b| (*a, *b)))
        .collect();
    // Pairs are independent (each ratio bootstrap seeds its own generator): run them on
    // every core; `collect` keeps the pair order.
    pairs
        .par_iter()
        .filter_map(|(a, b)| {
            let rows = compare_pair(&by_machine[a], &by_machine[b]);
            if rows.is_empty() {
                return None;
            }
            let families = summarise_families(&rows);
            Some(Comparison {
                a: (*a).clone(),
                b: (*b).clone(),
                rows,
                families,
            })
        })
        .collect()
}

fn compare_pair(
    a: &BTreeMap<ConfigKey, Vec<Indexed>>,
    b: &BTreeMap<ConfigKey, Vec<Indexed>>,
) -> Vec<ComparisonRow> {
    let mut rows = Vec::new();
    for (key, a_records) in a {
        let Some(b_records) = b.get(key) else {
            continue;
        };
        // Repeated measurements pair in load order; unpaired extras have nothing to compare.
        for (ra, rb) in a_records.iter().zip(b_records.iter()) {
            if let Some(row) = compare_records(key, *ra, *rb) {
                rows.push(row);
            }
        }
    }
    rows
}

fn compare_records(
    key: &ConfigKey,
    (a, rate_a): Indexed,
    (b, rate_b): Indexed,
) -> Option<ComparisonRow> {
    // Speedup of A over B = time B / time A, which is what `ratio(a, b)` computes.
    let speedup = silirep_stats::ratio(
        &observations(a.timing.as_ref()?),
        &observations(b.timing.as_ref()?),
    )
    .ok()?;
    Some(ComparisonRow {
        key: key.clone(),
        a: Side {
            rate: rate_a.clone(),
            framework: a.framework.clone(),
            file: a.source.file.clone(),
            json_path: a.source.json_path.clone(),
        },
        b: Side {
            rate: rate_b.clone(),
            framework: b.framework.clone(),
            file: b.source.file.clone(),
            json_path: b.source.json_path.clone(),
        },
        speedup,
        caveats: a
            .notes
            .iter()
            .chain(&b.notes)
            .filter(|n| n.starts_with(crate::ingest::cross_checks::SUSPECT_PREFIX))
            .cloned()
            .collect(),
    })
}

fn summarise_families(rows: &[ComparisonRow]) -> Vec<FamilySummary> {
    let mut by_family: BTreeMap<silirep_core::KernelFamily, Vec<f64>> = BTreeMap::new();
    for r in rows {
        by_family
            .entry(r.key.family)
            .or_default()
            .push(r.speedup.ratio);
    }
    by_family
        .into_iter()
        .filter_map(|(family, ratios)| {
            Some(FamilySummary {
                family,
                rows: ratios.len(),
                geomean: silirep_stats::geometric_mean_ratio(&ratios).ok()?,
            })
        })
        .collect()
}
