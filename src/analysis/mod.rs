//! From records to conclusions: per-measurement estimates, machine-vs-machine ratios,
//! rooflines and the "which machine for what" verdicts. The mathematics lives in the
//! `silirep-stats` (statistics) and `silirep-model` (roofline and workload maths) crates as pure
//! functions; this module decides what to compare with what.

pub mod catalog;
pub mod compare;
pub mod interconnect;
pub mod predictions;
pub mod report_sets;
pub mod rooflines;
pub mod verdicts;

use crate::ingest::{Dataset, Record, Timing};
use silirep_stats::Observations;

pub use silirep_core::RateUnit;

/// The natural rate of a record (the rule is [`silirep_core::KernelFamily::rate_unit`]):
/// the unit and the work of one iteration in it.
pub fn rate_basis(record: &Record) -> Option<(RateUnit, f64)> {
    record.spec.rate_work()
}

pub fn observations(timing: &Timing) -> Observations {
    match timing {
        Timing::Samples(s) => Observations::Samples(s.clone()),
        Timing::Summary { mean_s, std_s, n } => Observations::Summary {
            mean: *mean_s,
            std: *std_s,
            n: *n,
        },
        Timing::Single(v) => Observations::Single(*v),
    }
}

/// A rate (higher is better) with its 95% CI, derived from the time estimate: the CI bounds
/// swap because rate = work / time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RateEstimate {
    pub unit: RateUnit,
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub n: u64,
    /// `median`, `mean` or `single`.
    pub method: String,
}

pub fn rate_estimate(record: &Record) -> Option<RateEstimate> {
    let timing = record.timing.as_ref()?;
    let (unit, work) = rate_basis(record)?;
    let estimate = silirep_stats::estimate(&observations(timing)).ok()?;
    if estimate.center.is_nan() || estimate.center <= 0.0 {
        return None;
    }
    Some(RateEstimate {
        unit,
        value: work / estimate.center,
        lower: estimate.upper.filter(|u| *u > 0.0).map(|u| work / u),
        upper: estimate.lower.filter(|l| *l > 0.0).map(|l| work / l),
        n: timing.n(),
        method: timing.center_method().to_string(),
    })
}

/// Everything the renderers need, computed once.
#[derive(Debug)]
pub struct Analysis {
    /// One estimate per record, aligned with `Dataset::records`: bootstraps run once.
    pub rates: Vec<Option<RateEstimate>>,
    pub comparisons: Vec<compare::Comparison>,
    pub rooflines: Vec<rooflines::Roofline>,
    pub verdicts: Vec<verdicts::PairVerdicts>,
}

use rayon::prelude::*;

pub fn analyse(dataset: &Dataset, catalog: &catalog::Catalog) -> Analysis {
    analyse_with_rates(dataset, rates(dataset), catalog)
}

/// One estimate per record, aligned with `Dataset::records`.
pub fn rates(dataset: &Dataset) -> Vec<Option<RateEstimate>> {
    // Bootstraps dominate a report's run time and each record's is independent (its own
    // seeded generator), so they run on every core; `collect` keeps record order.
    dataset.records.par_iter().map(rate_estimate).collect()
}

/// [`analyse`] with the per-record estimates already made (a report computes them once for
/// every record and hands each analysis its share).
pub fn analyse_with_rates(
    dataset: &Dataset,
    rates: Vec<Option<RateEstimate>>,
    catalog: &catalog::Catalog,
) -> Analysis {
    let comparisons = compare::compare_machines(dataset, &rates);
    let rooflines = rooflines::rooflines(dataset, catalog);
    let verdicts = verdicts::derive(&comparisons, &rooflines);
    Analysis {
        rates,
        comparisons,
        rooflines,
        verdicts,
    }
}
