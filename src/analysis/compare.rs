//! Machine-vs-machine ratios for every configuration both machines measured.
//!
//! Records are paired by configuration *and* by the script that produced them (the source
//! file's name for imported results), so a GEMM timed by one script on machine A is compared
//! with the same script's GEMM on machine B — never with another script's number for the
//! same size. silirep's runs of one configuration on one machine are one row: the ratio
//! resamples runs where a machine has several, and its CI carries the run-to-run noise floor
//! (see [`super::history::NoiseFloors`] and docs/statistics.md). An imported configuration
//! measured twice on one machine stays two rows.

use super::history::{NoiseFloor, NoiseFloors};
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
    /// The latest run's rate where the machine has several runs of the configuration.
    pub rate: RateEstimate,
    /// How many runs the ratio is over.
    pub runs: usize,
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
    /// have a spread, widened by `noise_floor` where a machine has too few runs to show its
    /// run-to-run noise itself.
    pub speedup: RatioEstimate,
    pub noise_floor: NoiseFloor,
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
    // silirep runs of a configuration are kept in time order (run ids start with the machine
    // id and the UTC start time); the latest is the one a row shows.
    for configs in by_machine.values_mut() {
        for (key, records) in configs.iter_mut() {
            if key.script.is_empty() {
                records.sort_by(|x, y| x.0.run_id.cmp(&y.0.run_id));
            }
        }
    }
    let floors = NoiseFloors::from_dataset(dataset);
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
            let rows = compare_pair(&by_machine[a], &by_machine[b], |family| {
                NoiseFloor::combine(floors.floor(a, family), floors.floor(b, family))
            });
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
    floor_of: impl Fn(silirep_core::KernelFamily) -> NoiseFloor,
) -> Vec<ComparisonRow> {
    let mut rows = Vec::new();
    for (key, a_records) in a {
        let Some(b_records) = b.get(key) else {
            continue;
        };
        let floor = floor_of(key.family);
        if key.script.is_empty() {
            if let Some(row) = compare_runs(key, a_records, b_records, floor) {
                rows.push(row);
            }
            continue;
        }
        // Repeated imported measurements pair in load order; unpaired extras have nothing to
        // compare.
        for (ra, rb) in a_records.iter().zip(b_records.iter()) {
            if let Some(row) = compare_runs(key, &[*ra], &[*rb], floor) {
                rows.push(row);
            }
        }
    }
    rows
}

/// One row from each machine's runs of `key` (time order; the last is shown).
fn compare_runs(
    key: &ConfigKey,
    a_runs: &[Indexed],
    b_runs: &[Indexed],
    floor: NoiseFloor,
) -> Option<ComparisonRow> {
    let obs = |runs: &[Indexed]| -> Option<Vec<silirep_stats::Observations>> {
        runs.iter()
            .map(|(r, _)| r.timing.as_ref().map(observations))
            .collect()
    };
    // Speedup of A over B = time B / time A.
    let speedup =
        silirep_stats::compare::speedup_of_runs(&obs(a_runs)?, &obs(b_runs)?, floor.value).ok()?;
    let (a, rate_a) = *a_runs.last()?;
    let (b, rate_b) = *b_runs.last()?;
    Some(ComparisonRow {
        key: key.clone(),
        noise_floor: floor,
        a: Side {
            runs: a_runs.len(),
            rate: rate_a.clone(),
            framework: a.framework.clone(),
            file: a.source.file.clone(),
            json_path: a.source.json_path.clone(),
        },
        b: Side {
            runs: b_runs.len(),
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
