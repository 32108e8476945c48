//! A machine's silirep runs in time order: what changed between consecutive runs (silirep
//! version, driver, libraries, OS, power limit, settings), each configuration's value per run,
//! the steps in those series with the change that coincides, and the run-to-run noise floor
//! derived from configurations measured more than once.
//!
//! The statistics (steps, floors) are `silirep_stats`' pure functions; this module decides
//! which records form a series and which floor applies to it.

use super::RateEstimate;
use super::compare::ConfigKey;
use crate::ingest::{Dataset, MachineKey, Record, RunInfo};
use silirep_core::KernelFamily;
use silirep_stats::change_points::{self, SeriesPoint, SeriesVerdict};
use silirep_stats::compare::{DEFAULT_NOISE_FLOOR, DerivedFloor, noise_floor_from_series};
use std::collections::BTreeMap;

/// Where a noise floor comes from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum FloorSource {
    /// Derived from this machine's repeated runs of configurations of the same family.
    Derived(DerivedFloor),
    /// [`DEFAULT_NOISE_FLOOR`]: the results hold too few repeats for this machine and family.
    Default,
    /// Given on the command line.
    Given,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NoiseFloor {
    /// Relative (0.03 = 3%).
    pub value: f64,
    pub source: FloorSource,
}

impl NoiseFloor {
    /// `±3% (default: …)`, `±0.32% (derived from 12 differences between consecutive runs …)`.
    pub fn describe(&self) -> String {
        let value = crate::util::format::percent(self.value);
        match self.source {
            FloorSource::Derived(d) => format!(
                "±{value} (derived from {} differences between consecutive runs of {} configuration(s))",
                d.differences, d.configurations
            ),
            FloorSource::Default => {
                format!("±{value} (default: no repeated runs to derive it from)")
            }
            FloorSource::Given => format!("±{value} (given)"),
        }
    }

    /// The floor for a difference between two machines with floors `a` and `b`: each floor
    /// bounds the difference of two runs of one machine, so the mixed difference gets the
    /// root mean square of the two.
    pub fn combine(a: NoiseFloor, b: NoiseFloor) -> NoiseFloor {
        if a == b {
            return a;
        }
        NoiseFloor {
            value: ((a.value.powi(2) + b.value.powi(2)) / 2.0).sqrt(),
            source: match (a.source, b.source) {
                (FloorSource::Given, _) | (_, FloorSource::Given) => FloorSource::Given,
                (FloorSource::Default, FloorSource::Default) => FloorSource::Default,
                (FloorSource::Derived(d), _) | (_, FloorSource::Derived(d)) => {
                    FloorSource::Derived(d)
                }
            },
        }
    }
}

/// Each configuration's (run id, centre time) pairs.
type RunCentres<'a> = BTreeMap<ConfigKey, Vec<(&'a str, f64)>>;

/// Noise floors per machine and kernel family, derived where a machine measured
/// configurations of a family in more than one run. Keyed by machine id: a label can differ
/// between a results tree (where two machines sharing one get their ids appended) and a file
/// loaded on its own.
#[derive(Debug, Clone, Default)]
pub struct NoiseFloors {
    derived: BTreeMap<(String, KernelFamily), DerivedFloor>,
    given: Option<f64>,
}

impl NoiseFloors {
    pub fn from_dataset(dataset: &Dataset) -> NoiseFloors {
        let mut centres: BTreeMap<(String, KernelFamily), RunCentres> = BTreeMap::new();
        for r in &dataset.records {
            let (Some(run_id), Some(timing)) = (&r.run_id, &r.timing) else {
                continue;
            };
            centres
                .entry((r.machine.id.clone(), r.spec.family()))
                .or_default()
                .entry(ConfigKey::of(r))
                .or_default()
                .push((run_id, timing.center_s()));
        }
        let derived = centres
            .into_iter()
            .filter_map(|(key, configs)| {
                let series: Vec<Vec<f64>> = configs.into_values().map(in_time_order).collect();
                noise_floor_from_series(&series).map(|f| (key, f))
            })
            .collect();
        NoiseFloors {
            derived,
            given: None,
        }
    }

    /// Every floor replaced by `value` (the command line's `--noise-floor`).
    pub fn given(value: f64) -> NoiseFloors {
        NoiseFloors {
            derived: BTreeMap::new(),
            given: Some(value),
        }
    }

    pub fn floor(&self, machine: &MachineKey, family: KernelFamily) -> NoiseFloor {
        if let Some(value) = self.given {
            return NoiseFloor {
                value,
                source: FloorSource::Given,
            };
        }
        match self.derived.get(&(machine.id.clone(), family)) {
            Some(d) => NoiseFloor {
                value: d.value,
                source: FloorSource::Derived(*d),
            },
            None => NoiseFloor {
                value: DEFAULT_NOISE_FLOOR,
                source: FloorSource::Default,
            },
        }
    }
}

/// A configuration's run centres in time order (run ids start with the UTC start time after
/// the machine id, so they sort by time).
fn in_time_order(mut runs: Vec<(&str, f64)>) -> Vec<f64> {
    runs.sort_by(|a, b| a.0.cmp(b.0));
    runs.into_iter().map(|r| r.1).collect()
}

/// One run in a machine's history.
#[derive(Debug, Clone)]
pub struct HistoryRun {
    pub info: RunInfo,
    /// What differs from the previous run (`driver: 580 → 590`); empty for the first.
    pub changes: Vec<String>,
}

/// One configuration's value in one run.
#[derive(Debug, Clone)]
pub struct HistoryPoint {
    /// Index into [`MachineHistory::runs`].
    pub run: usize,
    pub rate: RateEstimate,
}

/// A step in a configuration's series, with the run it starts at and what changed there.
#[derive(Debug, Clone)]
pub struct HistoryStep {
    pub run: usize,
    /// Rate after / rate before: below 1 is slower.
    pub rate_ratio: f64,
    pub coinciding_changes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ConfigHistory {
    pub key: ConfigKey,
    /// In run order.
    pub points: Vec<HistoryPoint>,
    pub steps: Vec<HistoryStep>,
    pub verdict: SeriesVerdict,
    pub noise_floor: NoiseFloor,
}

#[derive(Debug, Clone)]
pub struct MachineHistory {
    pub machine: MachineKey,
    /// In time order (start time, then run id).
    pub runs: Vec<HistoryRun>,
    /// Configurations measured in more than one run.
    pub configurations: Vec<ConfigHistory>,
}

/// Histories of every machine with more than one silirep run. `rates` is aligned with
/// `dataset.records`.
pub fn histories(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    floors: &NoiseFloors,
) -> Vec<MachineHistory> {
    let mut runs_by_machine: BTreeMap<&MachineKey, Vec<&RunInfo>> = BTreeMap::new();
    for run in dataset.runs.values() {
        runs_by_machine.entry(&run.machine).or_default().push(run);
    }
    runs_by_machine
        .into_iter()
        .filter(|(_, runs)| runs.len() > 1)
        .map(|(machine, mut runs)| {
            runs.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
            let order: BTreeMap<&str, usize> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| (r.run_id.as_str(), i))
                .collect();
            let history_runs: Vec<HistoryRun> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| HistoryRun {
                    info: (*r).clone(),
                    changes: if i == 0 {
                        Vec::new()
                    } else {
                        r.changes_since(runs[i - 1])
                    },
                })
                .collect();
            let mut series: BTreeMap<ConfigKey, Vec<(usize, &Record, &RateEstimate)>> =
                BTreeMap::new();
            for (r, rate) in dataset.records.iter().zip(rates) {
                let (Some(rate), Some(run_id)) = (rate, &r.run_id) else {
                    continue;
                };
                if &r.machine != machine {
                    continue;
                }
                if let Some(&run) = order.get(run_id.as_str()) {
                    series
                        .entry(ConfigKey::of(r))
                        .or_default()
                        .push((run, r, rate));
                }
            }
            let configurations = series
                .into_iter()
                .filter(|(_, points)| points.len() > 1)
                .map(|(key, mut points)| {
                    points.sort_by_key(|(run, _, _)| *run);
                    let floor = floors.floor(machine, key.family);
                    config_history(key, &points, &history_runs, floor)
                })
                .collect();
            MachineHistory {
                machine: machine.clone(),
                runs: history_runs,
                configurations,
            }
        })
        .collect()
}

fn config_history(
    key: ConfigKey,
    points: &[(usize, &Record, &RateEstimate)],
    runs: &[HistoryRun],
    floor: NoiseFloor,
) -> ConfigHistory {
    // Steps are found on rates (higher is better); the series tests are symmetric, so a
    // slowdown is a step below 1.
    let series: Vec<SeriesPoint> = points
        .iter()
        .map(|(_, _, rate)| SeriesPoint {
            value: rate.value,
            lower: rate.lower,
            upper: rate.upper,
        })
        .collect();
    let verdict = change_points::analyse_series(&series, floor.value);
    let steps = verdict
        .steps
        .iter()
        .map(|s| {
            let run = points[s.index].0;
            let previous = points[s.index - 1].0;
            // Everything that changed in the runs between the two points, inclusive of the
            // step's own run.
            let coinciding_changes = runs[previous + 1..=run]
                .iter()
                .flat_map(|r| r.changes.iter().cloned())
                .collect();
            HistoryStep {
                run,
                rate_ratio: s.ratio,
                coinciding_changes,
            }
        })
        .collect();
    ConfigHistory {
        key,
        points: points
            .iter()
            .map(|(run, _, rate)| HistoryPoint {
                run: *run,
                rate: (*rate).clone(),
            })
            .collect(),
        steps,
        verdict,
        noise_floor: floor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::{Dtype, KernelSpec};

    fn machine() -> MachineKey {
        MachineKey {
            id: "box-1".into(),
            label: "Box".into(),
        }
    }

    fn gemm(n: u64) -> KernelSpec {
        KernelSpec::Gemm {
            m: n,
            n,
            k: n,
            dtype: Dtype::F32,
        }
    }

    fn run(index: usize, driver: &str) -> RunInfo {
        RunInfo {
            run_id: format!("box-1-2026010{index}T000000Z"),
            machine: machine(),
            file: format!("run{index}.json"),
            started_at: format!("2026-01-0{index}T00:00:00Z"),
            facts: [("driver".to_string(), driver.to_string())].into(),
        }
    }

    /// A dataset of `times[i]` for run i (1-based days) of each GEMM size, drivers per run.
    fn dataset(sizes: &[u64], times: &[f64], drivers: &[&str]) -> Dataset {
        let mut d = Dataset::default();
        for (i, (t, driver)) in times.iter().zip(drivers).enumerate() {
            let info = run(i + 1, driver);
            for &n in sizes {
                let mut r = Record::for_tests(
                    machine(),
                    gemm(n),
                    (0..20).map(|k| t * (1.0 + 1e-4 * (k % 5) as f64)).collect(),
                );
                r.run_id = Some(info.run_id.clone());
                d.records.push(r);
            }
            d.runs.insert(info.run_id.clone(), info);
        }
        d
    }

    #[test]
    fn floors_come_from_repeats_and_see_through_a_step() {
        // Two sizes, four runs: 1% apart, then a 10% step at run 3 (a new driver).
        let times = [1.0, 1.01, 1.10, 1.11];
        let d = dataset(&[256, 512], &times, &["1", "1", "2", "2"]);
        let floors = NoiseFloors::from_dataset(&d);
        let f = floors.floor(&machine(), KernelFamily::Gemm);
        let FloorSource::Derived(derived) = f.source else {
            panic!("expected a derived floor, got {f:?}");
        };
        // Three differences per size, one of them the step: the median is the 1% ones.
        assert_eq!(
            (derived.configurations, derived.differences),
            (2, 6),
            "{derived:?}"
        );
        assert!(f.value < 0.03, "{f:?}");
        // No repeats in another family: the default, said so.
        let other = floors.floor(&machine(), KernelFamily::Bandwidth);
        assert_eq!(
            (other.value, other.source),
            (DEFAULT_NOISE_FLOOR, FloorSource::Default)
        );
        assert!(other.describe().contains("default"));
    }

    #[test]
    fn histories_order_runs_and_name_the_change_at_a_step() {
        let times = [1.0, 1.0, 1.0, 1.08, 1.08];
        let drivers = ["580", "580", "580", "590", "590"];
        let d = dataset(&[256], &times, &drivers);
        let rates: Vec<Option<RateEstimate>> =
            d.records.iter().map(super::super::rate_estimate).collect();
        let histories = histories(&d, &rates, &NoiseFloors::given(0.03));
        assert_eq!(histories.len(), 1);
        let h = &histories[0];
        assert_eq!(h.runs.len(), 5);
        assert!(h.runs[0].changes.is_empty());
        assert_eq!(h.runs[3].changes, ["driver: 580 → 590"]);
        let c = &h.configurations[0];
        assert_eq!(c.steps.len(), 1, "{:?}", c.verdict);
        assert_eq!(c.steps[0].run, 3);
        assert!((c.steps[0].rate_ratio - 1.0 / 1.08).abs() < 1e-3);
        assert_eq!(c.steps[0].coinciding_changes, ["driver: 580 → 590"]);
    }

    #[test]
    fn machines_with_one_run_have_no_history_and_floors_combine() {
        let d = dataset(&[256], &[1.0], &["580"]);
        let rates: Vec<Option<RateEstimate>> =
            d.records.iter().map(super::super::rate_estimate).collect();
        assert!(histories(&d, &rates, &NoiseFloors::default()).is_empty());
        let a = NoiseFloor {
            value: 0.03,
            source: FloorSource::Default,
        };
        let b = NoiseFloor {
            value: 0.04,
            source: FloorSource::Default,
        };
        let c = NoiseFloor::combine(a, b);
        assert!((c.value - (0.0025f64 / 2.0 * 1.0).sqrt()).abs() < 1e-12);
        assert_eq!(NoiseFloor::combine(a, a), a);
    }
}
