//! silirep's statistics, as pure deterministic functions: estimates with 95% confidence
//! intervals (bootstrap on samples, t and delta-method intervals on published summaries),
//! machine-vs-machine ratios, geometric means across workloads, A/B comparisons of runs with a
//! run-to-run noise floor ([`compare`]) and steps in a series of runs ([`change_points`]).
//!
//! Deterministic means bit-identical: bootstraps use a fixed-seed generator and sequential
//! sums, so a committed report regenerates byte for byte.

pub mod change_points;
pub mod compare;
pub mod stats;

pub use stats::{
    CenterMethod, CiMethod, Estimate, GeoMean, MAX_CI_SPREAD, MIN_WORKLOADS_FOR_CI, NoCi,
    Observations, RatioEstimate, RatioMethod, StatsError, estimate, geometric_mean_ratio, ratio,
};
