//! silirep's statistics, as pure deterministic functions: estimates with 95% confidence
//! intervals (bootstrap on samples, t and delta-method intervals on published summaries),
//! machine-vs-machine ratios, and geometric means across workloads.
//!
//! Deterministic means bit-identical: bootstraps use a fixed-seed generator and sequential
//! sums, so a committed report regenerates byte for byte.

pub mod stats;

pub use stats::{
    CenterMethod, CiMethod, Estimate, GeoMean, MAX_CI_SPREAD, MIN_WORKLOADS_FOR_CI, NoCi,
    Observations, RatioEstimate, RatioMethod, StatsError, estimate, geometric_mean_ratio, ratio,
};
