//! A/B comparison of one configuration measured in two groups of runs (old and new): the
//! change in time per iteration with its 95% CI, a significance test, and a verdict that
//! respects run-to-run noise.
//!
//! Rules (docs/statistics.md gives the reasoning):
//! - One run on each side with samples: the change is the ratio of medians with a bootstrap
//!   percentile CI, and the test is the two-sided Mann–Whitney U test on the samples.
//! - Several runs on either side: runs, not only samples, are resampled (hierarchical
//!   bootstrap: draw runs with replacement, then samples within each drawn run; the centre of
//!   a side is the median of its run medians), and the change is significant when that CI
//!   excludes no change.
//! - Only mean/std/n on a side: the log-ratio delta method with Welch degrees of freedom.
//! - Samples within one run only see within-run noise; a machine's clocks, power cap and
//!   neighbours move a kernel between processes by more than that. Unless both sides have
//!   [`MIN_RUNS_FOR_RUN_LEVEL`] runs, the CI is widened by a noise floor f (lower / (1+f),
//!   upper · (1+f)): a change is significant only when the CI lies beyond ±f.

use crate::stats::{
    LEVEL, MedianResampler, Observations, RESAMPLES, RatioEstimate, RatioMethod, SEED, StatsError,
    median, percentile_interval, ratio,
};
use serde::Serialize;
use silirep_core::rng::SplitMix64;
use statrs::distribution::{ContinuousCDF, Normal};

/// Significance level of the tests (the complement of the 95% CIs).
pub const ALPHA: f64 = 1.0 - LEVEL;

/// Runs per side from which the hierarchical bootstrap is trusted to carry run-to-run noise
/// on its own: with two runs, resampling runs can only ever see two values.
pub const MIN_RUNS_FOR_RUN_LEVEL: usize = 3;

/// Relative noise floor used when the results hold no repeated runs to derive one from: 3%.
/// Issue 16 reports bf16 GEMM 8192 moving 3–9% between processes on one power-capped H100, and
/// this project's shared CPU VM moves by tens of percent between runs (docs/statistics.md); 3%
/// is the low end, so it hides no change a quiet machine could not produce by noise alone.
/// `silirep compare --noise-floor` replaces it.
pub const DEFAULT_NOISE_FLOOR: f64 = 0.03;

/// Fewest degrees of freedom (repeated runs beyond the first, summed over configurations)
/// a derived noise floor rests on.
pub const MIN_REPEATS_FOR_FLOOR: usize = 3;

/// Result of the two-sided Mann–Whitney U test (normal approximation with tie and continuity
/// corrections, as `scipy.stats.mannwhitneyu(method="asymptotic")`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U of the first sample: pairs (x, y) with x > y, ties counting one half.
    pub u: f64,
    pub z: f64,
    pub p_value: f64,
}

/// `None` when either side is empty or every value is the same (no ranks to compare).
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len() as f64;
    let (mut rank_sum_a, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks are 1-based; a tie group shares the mean of its ranks.
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let group = (j - i + 1) as f64;
        tie_term += group.powi(3) - group;
        rank_sum_a += mean_rank * all[i..=j].iter().filter(|(_, from_a)| *from_a).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean_u = n1 * n2 / 2.0;
    let var_u = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var_u <= 0.0 {
        return None;
    }
    // Continuity correction towards the mean, as scipy does.
    let distance = ((u - mean_u).abs() - 0.5).max(0.0);
    let z = distance / var_u.sqrt() * (u - mean_u).signum();
    let normal = Normal::new(0.0, 1.0).expect("the standard normal is valid");
    let p_value = (2.0 * normal.sf(distance / var_u.sqrt())).min(1.0);
    Some(MannWhitney { u, z, p_value })
}

/// The test behind a comparison's significance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Test {
    /// Two-sided Mann–Whitney U on the samples of one run per side.
    MannWhitneyU,
    /// Hierarchical bootstrap CI of the ratio of medians excludes 1.
    HierarchicalBootstrap,
    /// Delta-method (Welch) CI of the ratio of means excludes 1.
    DeltaMethod,
    /// A single value on a side: nothing to test.
    None,
}

impl Test {
    pub fn describe(self) -> &'static str {
        match self {
            Test::MannWhitneyU => "Mann-Whitney U",
            Test::HierarchicalBootstrap => "hierarchical bootstrap",
            Test::DeltaMethod => "delta method",
            Test::None => "none",
        }
    }
}

/// What happened to the time per iteration from old to new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Change {
    /// Significantly slower, beyond the noise floor.
    Slower,
    /// Significantly faster, beyond the noise floor.
    Faster,
    /// The test finds no difference ("~").
    NoChange,
    /// The test finds a difference, but the CI reaches into the noise floor ("~").
    WithinNoise,
    /// No interval or test possible (a single value on a side).
    Untested,
}

impl Change {
    pub fn is_significant(self) -> bool {
        matches!(self, Change::Slower | Change::Faster)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbComparison {
    /// Centre of the old and new times (median of run medians, or mean).
    pub old: f64,
    pub new: f64,
    /// new / old time: above 1 is slower.
    pub time_ratio: f64,
    /// 95% CI of `time_ratio` from the data alone (before the noise floor).
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub test: Test,
    /// Mann–Whitney's p-value where that test applies.
    pub p_value: Option<f64>,
    /// The relative floor applied (0 when both sides have enough runs to carry their own
    /// run-to-run noise).
    pub noise_floor: f64,
    pub change: Change,
    pub runs_old: usize,
    pub runs_new: usize,
}

/// Compares `old` with `new`, each a list of runs of one configuration (at least one).
pub fn compare_runs(
    old: &[Observations],
    new: &[Observations],
    noise_floor: f64,
) -> Result<AbComparison, StatsError> {
    if old.is_empty() || new.is_empty() {
        return Err(StatsError::Empty);
    }
    let floor = if old.len().min(new.len()) >= MIN_RUNS_FOR_RUN_LEVEL {
        0.0
    } else {
        noise_floor.max(0.0)
    };
    let old_samples = all_samples(old);
    let new_samples = all_samples(new);
    let (old_c, new_c, lower, upper, test, p_value) = match (&old_samples, &new_samples) {
        (Some(o), Some(n)) if o.len() == 1 && n.len() == 1 => {
            let r = ratio(&old[0], &new[0])?;
            let mw = mann_whitney_u(&o[0], &n[0]);
            let centres = (median(&mut o[0].clone()), median(&mut n[0].clone()));
            let test = if mw.is_some() && r.lower.is_some() {
                Test::MannWhitneyU
            } else {
                Test::None
            };
            (
                centres.0,
                centres.1,
                r.lower,
                r.upper,
                test,
                mw.map(|m| m.p_value),
            )
        }
        (Some(o), Some(n)) => {
            let (oc, nc) = (median_of_medians(o), median_of_medians(n));
            check_positive(oc)?;
            check_positive(nc)?;
            let (lo, hi) = hierarchical_ratio_interval(o, n);
            (
                oc,
                nc,
                Some(lo),
                Some(hi),
                Test::HierarchicalBootstrap,
                None,
            )
        }
        // Summaries (or single values) on a side: the latest run of each side, delta method.
        _ => {
            let (o, n) = (&old[old.len() - 1], &new[new.len() - 1]);
            let r = ratio(o, n)?;
            let test = match r.method {
                RatioMethod::DeltaWelch | RatioMethod::BootstrapPercentile => Test::DeltaMethod,
                _ => Test::None,
            };
            let oc = crate::stats::estimate(o)?.center;
            (oc, oc * r.ratio, r.lower, r.upper, test, None)
        }
    };
    check_positive(old_c)?;
    let time_ratio = new_c / old_c;
    let change = match (lower, upper) {
        (Some(lo), Some(hi)) if test != Test::None => {
            let test_says_different = match test {
                Test::MannWhitneyU => {
                    p_value.is_some_and(|p| p < ALPHA) && !(lo <= 1.0 && hi >= 1.0)
                }
                _ => !(lo <= 1.0 && hi >= 1.0),
            };
            let (wide_lo, wide_hi) = widen(lo, hi, floor);
            if !test_says_different {
                Change::NoChange
            } else if wide_lo > 1.0 {
                Change::Slower
            } else if wide_hi < 1.0 {
                Change::Faster
            } else {
                Change::WithinNoise
            }
        }
        _ => Change::Untested,
    };
    Ok(AbComparison {
        old: old_c,
        new: new_c,
        time_ratio,
        lower,
        upper,
        test,
        p_value,
        noise_floor: floor,
        change,
        runs_old: old.len(),
        runs_new: new.len(),
    })
}

/// Machine-vs-machine speedup of `a` over `b` (time b / time a), each a list of runs of one
/// configuration, with the 95% CI widened by the noise floor where either machine has fewer
/// than [`MIN_RUNS_FOR_RUN_LEVEL`] runs. `significant` means the widened CI excludes 1.
pub fn speedup_of_runs(
    a: &[Observations],
    b: &[Observations],
    noise_floor: f64,
) -> Result<RatioEstimate, StatsError> {
    let c = compare_runs(a, b, noise_floor)?;
    let method = match c.test {
        Test::MannWhitneyU => RatioMethod::BootstrapPercentile,
        Test::HierarchicalBootstrap => RatioMethod::HierarchicalBootstrap,
        Test::DeltaMethod => RatioMethod::DeltaWelch,
        Test::None => RatioMethod::None,
    };
    let (lower, upper) = match (c.lower, c.upper) {
        (Some(lo), Some(hi)) => {
            let (lo, hi) = widen(lo, hi, c.noise_floor);
            (Some(lo), Some(hi))
        }
        _ => (None, None),
    };
    Ok(RatioEstimate {
        ratio: c.time_ratio,
        lower,
        upper,
        method,
        significant: match (lower, upper) {
            (Some(lo), Some(hi)) => Some(!(lo <= 1.0 && hi >= 1.0)),
            _ => None,
        },
        noise_floor: (c.noise_floor > 0.0 && lower.is_some()).then_some(c.noise_floor),
    })
}

/// A CI widened by a relative noise floor on both sides.
pub fn widen(lower: f64, upper: f64, floor: f64) -> (f64, f64) {
    (lower / (1.0 + floor), upper * (1.0 + floor))
}

/// A noise floor derived from repeated runs, with what it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DerivedFloor {
    /// Relative: 95% of the differences between two runs of one configuration lie within ±it.
    pub value: f64,
    /// Configurations measured in more than one run.
    pub configurations: usize,
    /// Differences between consecutive runs of one configuration, over all of them.
    pub differences: usize,
}

/// The run-to-run noise floor from repeated runs: each series is one configuration's run
/// centres (times, > 0) in time order. The differences d between consecutive runs' log
/// centres, pooled over series, show how far two runs of an unchanged machine fall apart.
/// Their median absolute value m is robust to the few differences that straddle a real step
/// (a driver update) or an outlier run, which a standard deviation would count as noise. For
/// normal d, |d| has median 0.6745·σ_d, so 95% of differences lie within 1.96·m/0.6745; the
/// floor is that, as a ratio minus one. `None` below [`MIN_REPEATS_FOR_FLOOR`] differences.
pub fn noise_floor_from_series(series: &[Vec<f64>]) -> Option<DerivedFloor> {
    let (mut differences, mut configurations) = (Vec::new(), 0usize);
    for runs in series {
        if runs.len() < 2 || runs.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            continue;
        }
        configurations += 1;
        differences.extend(runs.windows(2).map(|w| (w[1] / w[0]).ln().abs()));
    }
    if differences.len() < MIN_REPEATS_FOR_FLOOR {
        return None;
    }
    let count = differences.len();
    let m = median(&mut differences);
    let normal = Normal::new(0.0, 1.0).expect("the standard normal is valid");
    let z = normal.inverse_cdf(0.5 + LEVEL / 2.0);
    let median_of_abs_normal = normal.inverse_cdf(0.75);
    Some(DerivedFloor {
        value: (z * m / median_of_abs_normal).exp() - 1.0,
        configurations,
        differences: count,
    })
}

fn check_positive(c: f64) -> Result<(), StatsError> {
    if c.is_nan() || c <= 0.0 {
        Err(StatsError::NonPositive(c))
    } else {
        Ok(())
    }
}

/// Every run's samples, when every run has at least two (else `None`: not resamplable).
fn all_samples(runs: &[Observations]) -> Option<Vec<Vec<f64>>> {
    runs.iter()
        .map(|r| match r {
            Observations::Samples(s) if s.len() >= 2 => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn median_of_medians(runs: &[Vec<f64>]) -> f64 {
    let mut medians: Vec<f64> = runs.iter().map(|r| median(&mut r.clone())).collect();
    median(&mut medians)
}

/// Percentile CI of new/old from resampling runs, then samples within each drawn run.
fn hierarchical_ratio_interval(old: &[Vec<f64>], new: &[Vec<f64>]) -> (f64, f64) {
    let seed_of = |runs: &[Vec<f64>]| {
        runs.iter()
            .fold(runs.len() as u64, |h, r| h.rotate_left(7) ^ r.len() as u64)
    };
    let mut rng = SplitMix64::new(SEED ^ seed_of(old) ^ seed_of(new).rotate_left(32));
    let mut old_resamplers: Vec<MedianResampler> =
        old.iter().map(|r| MedianResampler::new(r)).collect();
    let mut new_resamplers: Vec<MedianResampler> =
        new.iter().map(|r| MedianResampler::new(r)).collect();
    let mut scratch = Vec::new();
    let mut side = |resamplers: &mut [MedianResampler], rng: &mut SplitMix64| {
        scratch.clear();
        for _ in 0..resamplers.len() {
            let run = rng.index(resamplers.len());
            scratch.push(resamplers[run].next(rng));
        }
        median(&mut scratch)
    };
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let o = side(&mut old_resamplers, &mut rng);
            side(&mut new_resamplers, &mut rng) / o
        })
        .collect();
    percentile_interval(&mut ratios)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log-normal-ish timing noise: `centre · (1 + spread · u)`, u uniform in [-1, 1).
    fn run(rng: &mut SplitMix64, n: usize, centre: f64, spread: f64) -> Observations {
        Observations::Samples(
            (0..n)
                .map(|_| centre * (1.0 + spread * rng.uniform(-1.0, 1.0)))
                .collect(),
        )
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // ClickHouse's test data (tests/queries/0_stateless/01560_mann_whitney.sql), checked
        // with scipy.stats.mannwhitneyu(left, right, alternative="two-sided",
        // method="asymptotic"): U = 223.0, p = 0.5426959774289482.
        let left = [
            310.0, 195.0, 530.0, 155.0, 530.0, 245.0, 385.0, 450.0, 465.0, 545.0, 170.0, 180.0,
            125.0, 180.0, 230.0, 75.0, 430.0, 480.0, 495.0, 295.0,
        ];
        let right = [
            116.0, 171.0, 176.0, 421.0, 111.0, 326.0, 481.0, 111.0, 346.0, 441.0, 261.0, 411.0,
            206.0, 521.0, 456.0, 446.0, 296.0, 51.0, 426.0, 261.0,
        ];
        let mw = mann_whitney_u(&left, &right).unwrap();
        assert_eq!(mw.u, 223.0);
        assert!((mw.p_value - 0.5426959774289482).abs() < 1e-9, "{mw:?}");
        // Fully separated samples of 10: scipy asymptotic p = 0.00018267179110955002.
        let low: Vec<f64> = (0..10).map(f64::from).collect();
        let high: Vec<f64> = (10..20).map(f64::from).collect();
        let mw = mann_whitney_u(&low, &high).unwrap();
        assert_eq!(mw.u, 0.0);
        assert!(
            (mw.p_value - 0.00018267179110955002).abs() < 1e-12,
            "{mw:?}"
        );
        assert!(mann_whitney_u(&[1.0; 5], &[1.0; 5]).is_none());
        assert!(mann_whitney_u(&[], &[1.0]).is_none());
    }

    #[test]
    fn false_positive_rate_on_identical_distributions_is_at_most_five_percent() {
        // 1,000 pairs of runs drawn from one distribution (20 and 30 samples, ±5% uniform
        // noise), no noise floor: the rate of "significant" verdicts is the test's false
        // positive rate, and must not exceed its 5% level. docs/statistics.md reports it.
        let mut rng = SplitMix64::new(0xfa15e);
        let (mut mw_rejections, mut verdict_rejections) = (0, 0);
        let pairs = 1000;
        for _ in 0..pairs {
            let old = run(&mut rng, 20, 1e-3, 0.05);
            let new = run(&mut rng, 30, 1e-3, 0.05);
            let c = compare_runs(&[old], &[new], 0.0).unwrap();
            assert_eq!(c.test, Test::MannWhitneyU);
            if c.p_value.unwrap() < ALPHA {
                mw_rejections += 1;
            }
            if c.change.is_significant() {
                verdict_rejections += 1;
            }
        }
        let mw_rate = mw_rejections as f64 / pairs as f64;
        let verdict_rate = verdict_rejections as f64 / pairs as f64;
        // Printed for docs/statistics.md (`cargo test -p silirep-stats -- --nocapture`).
        eprintln!(
            "false positives in {pairs} pairs: Mann-Whitney {mw_rate}, verdict {verdict_rate}"
        );
        assert!(mw_rate <= 0.05, "Mann-Whitney rejected {mw_rate}");
        // The verdict also needs the bootstrap CI to exclude 1: never more than the test alone.
        assert!(verdict_rate <= mw_rate, "{verdict_rate} > {mw_rate}");
        // And the test is not vacuous: a 5% shift with the same noise is found nearly always.
        let found = (0..100)
            .filter(|_| {
                let old = run(&mut rng, 20, 1e-3, 0.05);
                let new = run(&mut rng, 30, 1.05e-3, 0.05);
                compare_runs(&[old], &[new], 0.0).unwrap().change == Change::Slower
            })
            .count();
        assert!(found >= 80, "a 5% slowdown found only {found} times of 100");
    }

    #[test]
    fn the_noise_floor_turns_small_significant_changes_into_noise() {
        let mut rng = SplitMix64::new(3);
        let old = run(&mut rng, 200, 1e-3, 0.002);
        let new = run(&mut rng, 200, 1.02e-3, 0.002);
        let strict =
            compare_runs(std::slice::from_ref(&old), std::slice::from_ref(&new), 0.0).unwrap();
        assert_eq!(strict.change, Change::Slower);
        assert!((strict.time_ratio - 1.02).abs() < 0.002, "{strict:?}");
        let floored = compare_runs(std::slice::from_ref(&old), &[new], 0.03).unwrap();
        assert_eq!(floored.change, Change::WithinNoise);
        let much_slower = run(&mut rng, 200, 1.08e-3, 0.002);
        let c = compare_runs(std::slice::from_ref(&old), &[much_slower], 0.03).unwrap();
        assert_eq!(c.change, Change::Slower);
        let faster = run(&mut rng, 200, 0.9e-3, 0.002);
        assert_eq!(
            compare_runs(&[old], &[faster], 0.03).unwrap().change,
            Change::Faster
        );
    }

    #[test]
    fn hierarchical_bootstrap_sees_run_to_run_spread() {
        // Three runs a side whose medians wander by ±3% while each run is tight (±0.1%):
        // sample-level statistics would call a 1% difference certain; run-level ones do not.
        let mut rng = SplitMix64::new(11);
        let old: Vec<Observations> = [1.0, 1.03, 0.97]
            .iter()
            .map(|m| run(&mut rng, 100, 1e-3 * m, 0.001))
            .collect();
        let new: Vec<Observations> = [1.04, 0.98, 1.01]
            .iter()
            .map(|m| run(&mut rng, 100, 1e-3 * m, 0.001))
            .collect();
        let c = compare_runs(&old, &new, DEFAULT_NOISE_FLOOR).unwrap();
        assert_eq!(c.test, Test::HierarchicalBootstrap);
        assert_eq!(
            c.noise_floor, 0.0,
            "three runs a side carry their own noise"
        );
        assert_eq!(c.change, Change::NoChange, "{c:?}");
        assert!(c.lower.unwrap() < 0.98 && c.upper.unwrap() > 1.03, "{c:?}");
        // A 10% step across all runs is found.
        let slow: Vec<Observations> = [1.10, 1.11, 1.09]
            .iter()
            .map(|m| run(&mut rng, 100, 1e-3 * m, 0.001))
            .collect();
        assert_eq!(
            compare_runs(&old, &slow, 0.0).unwrap().change,
            Change::Slower
        );
    }

    #[test]
    fn speedups_of_runs_carry_the_floor_in_their_interval() {
        let mut rng = SplitMix64::new(5);
        let a = run(&mut rng, 300, 1.0e-3, 0.001);
        let b = run(&mut rng, 300, 1.05e-3, 0.001);
        let s = speedup_of_runs(std::slice::from_ref(&a), std::slice::from_ref(&b), 0.03).unwrap();
        assert!((s.ratio - 1.05).abs() < 0.002);
        assert!(s.lower.unwrap() < 1.05 / 1.029 && s.upper.unwrap() > 1.05 * 1.029);
        assert_eq!((s.significant, s.noise_floor), (Some(true), Some(0.03)));
        let close = run(&mut rng, 300, 1.02e-3, 0.001);
        let s = speedup_of_runs(&[a], &[close], 0.03).unwrap();
        assert_eq!(s.significant, Some(false), "{s:?}");
        let single = speedup_of_runs(
            &[Observations::Single(1.0)],
            &[Observations::Single(2.0)],
            0.03,
        )
        .unwrap();
        assert_eq!((single.ratio, single.significant), (2.0, None));
    }

    #[test]
    fn summaries_use_the_delta_method() {
        let old = Observations::Summary {
            mean: 1.0,
            std: 0.01,
            n: 50,
        };
        let new = Observations::Summary {
            mean: 1.1,
            std: 0.01,
            n: 50,
        };
        let c = compare_runs(&[old], &[new], 0.03).unwrap();
        assert_eq!((c.test, c.change), (Test::DeltaMethod, Change::Slower));
        assert!((c.time_ratio - 1.1).abs() < 1e-12);
    }

    #[test]
    fn noise_floor_from_series_matches_a_hand_computation() {
        // |log differences|: ln 1.01, ln 1.02, 0, ln 1.01 → median (of four) = ln 1.01.
        // scipy.stats.norm.ppf(0.975) = 1.959963984540054, norm.ppf(0.75) = 0.6744897501960817.
        let series = vec![vec![1.0, 1.01], vec![2.0, 2.04], vec![3.0, 3.0, 3.03]];
        let f = noise_floor_from_series(&series).unwrap();
        let expected = (1.959963984540054 * 1.01f64.ln() / 0.6744897501960817).exp() - 1.0;
        assert!((f.value - expected).abs() < 1e-12, "{f:?} vs {expected}");
        assert_eq!((f.configurations, f.differences), (3, 4));
        assert!(noise_floor_from_series(&[vec![1.0, 1.1]]).is_none());
        assert!(noise_floor_from_series(&[vec![1.0], vec![2.0]]).is_none());
    }

    #[test]
    fn a_real_step_does_not_inflate_the_floor() {
        // Six quiet runs (±0.1%) with a 10% driver step in the middle: one difference of
        // ln 1.1 among five of about 0.1%. A standard deviation would make the step noise.
        let series = vec![vec![1.0, 1.001, 0.999, 1.1, 1.101, 1.099]];
        let f = noise_floor_from_series(&series).unwrap();
        assert!(f.value < 0.01, "{f:?}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(compare_runs(&[], &[Observations::Single(1.0)], 0.0).is_err());
        assert!(
            compare_runs(
                &[Observations::Samples(vec![])],
                &[Observations::Single(1.0)],
                0.0
            )
            .is_err()
        );
    }
}
