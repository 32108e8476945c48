//! The mathematics behind silirep's reports, as pure deterministic functions: estimates with
//! 95% confidence intervals, machine-vs-machine ratios, geometric means, and roofline math.
//!
//! Deterministic means bit-identical: bootstraps use a fixed-seed generator and sequential
//! sums, so a committed report regenerates byte for byte.

pub mod roofline;
pub mod stats;

pub use roofline::{
    Bound, RooflineFit, attainable_flops, bound, fit_roofline, ridge_point_flops_per_byte,
    roof_fraction,
};
pub use stats::{
    CenterMethod, CiMethod, Estimate, GeoMean, MAX_CI_SPREAD, MIN_WORKLOADS_FOR_CI, NoCi,
    Observations, RatioEstimate, RatioMethod, StatsError, estimate, geometric_mean_ratio, ratio,
};
