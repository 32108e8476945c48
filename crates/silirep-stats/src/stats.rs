//! Estimates and ratios with 95% confidence intervals.
//!
//! Inputs are per-iteration times (seconds; smaller is better) in the richest form a source
//! offers: raw samples, a published mean/std/n, or a single value. Each gets the interval it
//! can honestly support: a percentile bootstrap of the median for samples, a Student-t
//! interval for mean/std/n, none for one value.

use serde::Serialize;
use silirep_core::rng::SplitMix64;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Bootstrap resamples. 2,000 puts the Monte-Carlo error of a 95% percentile bound well
/// under the interval's own width (Efron & Tibshirani, ch. 19) while keeping a 10,000-file
/// report within seconds.
pub const RESAMPLES: usize = 2000;
pub(crate) const SEED: u64 = 0x0511_12e9_b007;
pub(crate) const LEVEL: f64 = 0.95;

#[derive(Debug, Clone, PartialEq)]
pub enum Observations {
    Samples(Vec<f64>),
    Summary { mean: f64, std: f64, n: u64 },
    Single(f64),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("no observations")]
    Empty,
    #[error("non-finite value {0} among the observations")]
    NonFinite(f64),
    #[error("a summary needs n ≥ 1 and std ≥ 0 (got n = {n}, std = {std})")]
    BadSummary { n: u64, std: f64 },
    #[error("ratios need positive centres (got {0})")]
    NonPositive(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CenterMethod {
    Median,
    Mean,
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CiMethod {
    BootstrapPercentile,
    StudentT,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub center: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub method: CenterMethod,
    pub ci_method: CiMethod,
    pub n: u64,
}

impl Estimate {
    /// The larger distance from the centre to either CI bound, as a fraction of the centre:
    /// the one number `silirep measure` prints for the interval the report shows. `None`
    /// without an interval or with a non-positive centre.
    pub fn relative_half_width(&self) -> Option<f64> {
        let (lower, upper) = (self.lower?, self.upper?);
        (self.center > 0.0).then(|| (self.center - lower).max(upper - self.center) / self.center)
    }
}

pub fn estimate(obs: &Observations) -> Result<Estimate, StatsError> {
    validate(obs)?;
    Ok(match obs {
        Observations::Samples(s) => {
            let center = median(&mut s.clone());
            let (lower, upper) = if s.len() >= 2 {
                let mut rng = SplitMix64::new(SEED ^ s.len() as u64);
                let mut resampler = MedianResampler::new(s);
                let mut medians: Vec<f64> =
                    (0..RESAMPLES).map(|_| resampler.next(&mut rng)).collect();
                let (lo, hi) = percentile_interval(&mut medians);
                (Some(lo), Some(hi))
            } else {
                (None, None)
            };
            Estimate {
                center,
                lower,
                upper,
                method: CenterMethod::Median,
                ci_method: if lower.is_some() {
                    CiMethod::BootstrapPercentile
                } else {
                    CiMethod::None
                },
                n: s.len() as u64,
            }
        }
        Observations::Summary { mean, std, n } => {
            if *n >= 2 {
                let half = t_quantile((*n - 1) as f64) * std / (*n as f64).sqrt();
                Estimate {
                    center: *mean,
                    lower: Some(mean - half),
                    upper: Some(mean + half),
                    method: CenterMethod::Mean,
                    ci_method: CiMethod::StudentT,
                    n: *n,
                }
            } else {
                Estimate {
                    center: *mean,
                    lower: None,
                    upper: None,
                    method: CenterMethod::Mean,
                    ci_method: CiMethod::None,
                    n: *n,
                }
            }
        }
        Observations::Single(v) => Estimate {
            center: *v,
            lower: None,
            upper: None,
            method: CenterMethod::Single,
            ci_method: CiMethod::None,
            n: 1,
        },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RatioMethod {
    /// Independent resampling of both sample sets, ratio of medians, percentile interval.
    BootstrapPercentile,
    /// Log-ratio delta method with Welch–Satterthwaite degrees of freedom.
    DeltaWelch,
    /// Runs resampled, then samples within each drawn run (see `compare`).
    HierarchicalBootstrap,
    /// One side has a single value: point estimate only.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// Speedup of `a` over `b`: centre(b time) / centre(a time). Above 1: `a` is faster.
    pub ratio: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub method: RatioMethod,
    /// `Some(false)` when the 95% CI contains 1 (no significant difference); `None` without
    /// a CI.
    pub significant: Option<bool>,
    /// The relative run-to-run noise floor the interval was widened by, when it was (see
    /// `compare::speedup_of_runs`).
    pub noise_floor: Option<f64>,
}

/// How many times faster `a` is than `b`, given their per-iteration times.
pub fn ratio(a: &Observations, b: &Observations) -> Result<RatioEstimate, StatsError> {
    validate(a)?;
    validate(b)?;
    let ea = estimate_center(a);
    let eb = estimate_center(b);
    for c in [ea, eb] {
        if c.is_nan() || c <= 0.0 {
            return Err(StatsError::NonPositive(c));
        }
    }
    let point = eb / ea;
    let (lower, upper, method) = match (a, b) {
        (Observations::Single(_), _) | (_, Observations::Single(_)) => {
            (None, None, RatioMethod::None)
        }
        (Observations::Samples(sa), Observations::Samples(sb))
            if sa.len() >= 2 && sb.len() >= 2 =>
        {
            let mut rng = SplitMix64::new(SEED ^ ((sa.len() as u64) << 32) ^ sb.len() as u64);
            let (mut ra, mut rb) = (MedianResampler::new(sa), MedianResampler::new(sb));
            let mut ratios: Vec<f64> = (0..RESAMPLES)
                .map(|_| {
                    let ma = ra.next(&mut rng);
                    rb.next(&mut rng) / ma
                })
                .collect();
            let (lo, hi) = percentile_interval(&mut ratios);
            (Some(lo), Some(hi), RatioMethod::BootstrapPercentile)
        }
        _ => match (summary(a), summary(b)) {
            (Some((ma, sa, na)), Some((mb, sb, nb))) if na >= 2 && nb >= 2 => {
                let (lo, hi) = delta_welch(ma, sa, na, mb, sb, nb);
                (Some(lo), Some(hi), RatioMethod::DeltaWelch)
            }
            _ => (None, None, RatioMethod::None),
        },
    };
    Ok(RatioEstimate {
        ratio: point,
        lower,
        upper,
        method,
        significant: match (lower, upper) {
            (Some(lo), Some(hi)) => Some(!(lo <= 1.0 && hi >= 1.0)),
            _ => None,
        },
        noise_floor: None,
    })
}

/// CI for mb/ma from two means: var(log m) ≈ s²/(n·m²) (delta method), t quantile with
/// Welch–Satterthwaite degrees of freedom.
fn delta_welch(ma: f64, sa: f64, na: u64, mb: f64, sb: f64, nb: u64) -> (f64, f64) {
    let va = sa * sa / (na as f64 * ma * ma);
    let vb = sb * sb / (nb as f64 * mb * mb);
    let log_ratio = (mb / ma).ln();
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return (mb / ma, mb / ma);
    }
    let df = (va + vb).powi(2) / (va * va / (na - 1) as f64 + vb * vb / (nb - 1) as f64);
    let half = t_quantile(df) * se;
    ((log_ratio - half).exp(), (log_ratio + half).exp())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeoMean {
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub count: usize,
    /// Set, with `lower`/`upper` left empty, when an interval would not mean anything.
    pub no_ci: Option<NoCi>,
    /// The smallest and largest ratio averaged.
    pub range: (f64, f64),
}

/// Why a geometric mean across workloads carries no confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum NoCi {
    /// Fewer than [`MIN_WORKLOADS_FOR_CI`] ratios: with one degree of freedom the t quantile
    /// is 12.7, and the interval says more about the formula than about the machines.
    TooFew,
    /// The interval would span more than [`MAX_CI_SPREAD`]×: the ratios disagree by orders of
    /// magnitude, so no single factor summarises them.
    TooSpread { lower: f64, upper: f64 },
}

/// Fewest ratios a geometric mean's interval is computed from.
pub const MIN_WORKLOADS_FOR_CI: usize = 3;
/// Widest interval (upper / lower) still printed.
pub const MAX_CI_SPREAD: f64 = 100.0;

/// Geometric mean of ratios with a t-interval on their logarithms, or the reason for none
/// (fewer than [`MIN_WORKLOADS_FOR_CI`] ratios, or an interval wider than [`MAX_CI_SPREAD`]).
pub fn geometric_mean_ratio(ratios: &[f64]) -> Result<GeoMean, StatsError> {
    if ratios.is_empty() {
        return Err(StatsError::Empty);
    }
    if let Some(bad) = ratios.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(StatsError::NonPositive(*bad));
    }
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let range = ratios
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(*r), hi.max(*r))
        });
    let interval = if logs.len() >= MIN_WORKLOADS_FOR_CI {
        let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let half = t_quantile(n - 1.0) * (var / n).sqrt();
        let (lower, upper) = ((mean - half).exp(), (mean + half).exp());
        if upper / lower > MAX_CI_SPREAD {
            Err(NoCi::TooSpread { lower, upper })
        } else {
            Ok((lower, upper))
        }
    } else {
        Err(NoCi::TooFew)
    };
    Ok(GeoMean {
        value: mean.exp(),
        lower: interval.ok().map(|i| i.0),
        upper: interval.ok().map(|i| i.1),
        count: logs.len(),
        no_ci: interval.err(),
        range,
    })
}

fn validate(obs: &Observations) -> Result<(), StatsError> {
    match obs {
        Observations::Samples(s) => {
            if s.is_empty() {
                return Err(StatsError::Empty);
            }
            if let Some(bad) = s.iter().find(|v| !v.is_finite()) {
                return Err(StatsError::NonFinite(*bad));
            }
        }
        Observations::Summary { mean, std, n } => {
            if !mean.is_finite() {
                return Err(StatsError::NonFinite(*mean));
            }
            if *n == 0 || !(std.is_finite() && *std >= 0.0) {
                return Err(StatsError::BadSummary { n: *n, std: *std });
            }
        }
        Observations::Single(v) => {
            if !v.is_finite() {
                return Err(StatsError::NonFinite(*v));
            }
        }
    }
    Ok(())
}

fn estimate_center(obs: &Observations) -> f64 {
    match obs {
        Observations::Samples(s) => median(&mut s.clone()),
        Observations::Summary { mean, .. } => *mean,
        Observations::Single(v) => *v,
    }
}

/// (mean, sample std, n) of samples or a published summary.
fn summary(obs: &Observations) -> Option<(f64, f64, u64)> {
    match obs {
        Observations::Samples(s) if s.len() >= 2 => {
            let n = s.len() as f64;
            let mean = s.iter().sum::<f64>() / n;
            let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            Some((mean, var.sqrt(), s.len() as u64))
        }
        Observations::Summary { mean, std, n } => Some((*mean, *std, *n)),
        _ => None,
    }
}

fn t_quantile(df: f64) -> f64 {
    let q = 0.5 + LEVEL / 2.0;
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(q))
        .unwrap_or(1.959_963_984_540_054)
}

/// Medians of bootstrap resamples (n draws with replacement) of one sample set.
///
/// The set is sorted once; a resample is then only a histogram of n drawn ranks, and its
/// median is found by walking the histogram to the middle rank(s). Same distribution as
/// copying n values and selecting the median, without moving or comparing any f64 — the
/// bootstrap is most of a report's run time.
pub(crate) struct MedianResampler {
    sorted: Vec<f64>,
    counts: Vec<u32>,
}

impl MedianResampler {
    pub(crate) fn new(samples: &[f64]) -> MedianResampler {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        MedianResampler {
            counts: vec![0; sorted.len()],
            sorted,
        }
    }

    pub(crate) fn next(&mut self, rng: &mut SplitMix64) -> f64 {
        let n = self.sorted.len();
        self.counts.fill(0);
        for _ in 0..n {
            self.counts[rng.index(n)] += 1;
        }
        // Zero-based ranks of the middle element(s) of the resample.
        let (low_rank, high_rank) = ((n - 1) / 2, n / 2);
        let (mut low, mut seen) = (None, 0usize);
        for (value, &count) in self.sorted.iter().zip(&self.counts) {
            seen += count as usize;
            if low.is_none() && seen > low_rank {
                low = Some(*value);
            }
            if seen > high_rank {
                let low = low.unwrap_or(*value);
                return 0.5 * (low + *value);
            }
        }
        unreachable!("the histogram holds n draws, so rank n/2 is reached")
    }
}

/// Median; reorders `values`.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let mid = n / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower = values[..mid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

/// 2.5% and 97.5% percentiles with linear interpolation (numpy's default method).
pub(crate) fn percentile_interval(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (values.len() - 1) as f64;
        let i = pos.floor() as usize;
        let frac = pos - i as f64;
        if i + 1 < values.len() {
            values[i] + frac * (values[i + 1] - values[i])
        } else {
            values[i]
        }
    };
    let alpha = (1.0 - LEVEL) / 2.0;
    (q(alpha), q(1.0 - alpha))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn t_interval_matches_scipy() {
        // scipy.stats.t.interval(0.95, df=19, loc=2.0, scale=0.5/np.sqrt(20))
        //   → (1.76599279679, 2.23400720321)
        let e = estimate(&Observations::Summary {
            mean: 2.0,
            std: 0.5,
            n: 20,
        })
        .unwrap();
        assert!(close(e.lower.unwrap(), 1.76599279679, 1e-9), "{e:?}");
        assert!(close(e.upper.unwrap(), 2.23400720321, 1e-9), "{e:?}");
        // n = 2: scipy.stats.t.ppf(0.975, 1) = 12.7062047362
        let e = estimate(&Observations::Summary {
            mean: 1.0,
            std: 1.0,
            n: 2,
        })
        .unwrap();
        assert!(close(
            e.upper.unwrap() - 1.0,
            12.7062047362 / 2f64.sqrt(),
            1e-8
        ));
    }

    #[test]
    fn single_values_and_n1_have_no_interval() {
        let e = estimate(&Observations::Single(3.0)).unwrap();
        assert_eq!((e.lower, e.ci_method), (None, CiMethod::None));
        let e = estimate(&Observations::Samples(vec![3.0])).unwrap();
        assert_eq!((e.center, e.lower), (3.0, None));
        let e = estimate(&Observations::Summary {
            mean: 3.0,
            std: 0.0,
            n: 1,
        })
        .unwrap();
        assert_eq!(e.lower, None);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert_eq!(
            estimate(&Observations::Samples(vec![])),
            Err(StatsError::Empty)
        );
        assert!(estimate(&Observations::Samples(vec![1.0, f64::NAN])).is_err());
        assert!(
            estimate(&Observations::Summary {
                mean: 1.0,
                std: -1.0,
                n: 5
            })
            .is_err()
        );
        assert!(ratio(&Observations::Single(0.0), &Observations::Single(1.0)).is_err());
        assert!(geometric_mean_ratio(&[]).is_err());
        assert!(geometric_mean_ratio(&[1.0, -2.0]).is_err());
    }

    #[test]
    fn zero_variance_gives_a_zero_width_interval() {
        let e = estimate(&Observations::Samples(vec![2.0; 30])).unwrap();
        assert_eq!((e.lower, e.upper), (Some(2.0), Some(2.0)));
        let e = estimate(&Observations::Summary {
            mean: 2.0,
            std: 0.0,
            n: 30,
        })
        .unwrap();
        assert_eq!((e.lower, e.upper), (Some(2.0), Some(2.0)));
    }

    fn synthetic(n: usize, center: f64, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        // Uniform noise ±10% around the centre: median = centre in expectation.
        (0..n)
            .map(|_| center * (0.9 + 0.2 * (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64))
            .collect()
    }

    #[test]
    fn bootstrap_median_interval_covers_contains_and_shrinks() {
        let small = estimate(&Observations::Samples(synthetic(20, 1.0, 1))).unwrap();
        let large = estimate(&Observations::Samples(synthetic(500, 1.0, 2))).unwrap();
        for e in [&small, &large] {
            assert!(e.lower.unwrap() <= e.center && e.center <= e.upper.unwrap());
            assert!(e.lower.unwrap() < 1.0 && 1.0 < e.upper.unwrap(), "{e:?}");
        }
        let width = |e: &Estimate| e.upper.unwrap() - e.lower.unwrap();
        assert!(width(&large) < width(&small) / 2.0);
        // Deterministic across calls.
        assert_eq!(
            small,
            estimate(&Observations::Samples(synthetic(20, 1.0, 1))).unwrap()
        );
        // Coverage on 200 synthetic data sets: a 95% interval misses roughly 5% of the time.
        let misses = (0..200)
            .filter(|i| {
                let e = estimate(&Observations::Samples(synthetic(40, 1.0, 100 + i))).unwrap();
                !(e.lower.unwrap() <= 1.0 && 1.0 <= e.upper.unwrap())
            })
            .count();
        assert!(misses <= 25, "{misses} misses of 200");
    }

    #[test]
    fn relative_half_width_takes_the_wider_side() {
        let e = Estimate {
            center: 2.0,
            lower: Some(1.9),
            upper: Some(2.2),
            method: CenterMethod::Median,
            ci_method: CiMethod::BootstrapPercentile,
            n: 10,
        };
        assert!((e.relative_half_width().unwrap() - 0.1).abs() < 1e-12);
        let single = estimate(&Observations::Single(1.0)).unwrap();
        assert_eq!(single.relative_half_width(), None);
    }

    #[test]
    fn delta_method_with_welch_df_matches_a_hand_computation() {
        // ma=2, sa=0.2, na=10; mb=4, sb=0.8, nb=20.
        // va = 0.04/(10·4) = 0.001; vb = 0.64/(20·16) = 0.002; se = √0.003
        // df = 0.003² / (0.001²/9 + 0.002²/19) = 27.9818; scipy.stats.t.ppf(0.975, 27.9818)
        // = 2.048467; CI = 2·exp(±2.048467·√0.003) → (1.787732427, 2.237471301)
        let r = ratio(
            &Observations::Summary {
                mean: 2.0,
                std: 0.2,
                n: 10,
            },
            &Observations::Summary {
                mean: 4.0,
                std: 0.8,
                n: 20,
            },
        )
        .unwrap();
        assert_eq!(r.ratio, 2.0);
        assert_eq!(r.method, RatioMethod::DeltaWelch);
        assert!(close(r.lower.unwrap(), 1.787732427, 1e-8), "{r:?}");
        assert!(close(r.upper.unwrap(), 2.237471301, 1e-8), "{r:?}");
        assert_eq!(r.significant, Some(true));
    }

    #[test]
    fn bootstrap_ratio_detects_differences_and_their_absence() {
        let fast = Observations::Samples(synthetic(50, 1.0, 7));
        let slow = Observations::Samples(synthetic(50, 2.0, 8));
        let r = ratio(&fast, &slow).unwrap();
        assert!(close(r.ratio, 2.0, 0.05), "{r:?}");
        assert_eq!(r.significant, Some(true));
        let same = ratio(&fast, &Observations::Samples(synthetic(50, 1.0, 9))).unwrap();
        assert_eq!(same.significant, Some(false), "{same:?}");
        let single = ratio(&fast, &Observations::Single(2.0)).unwrap();
        assert_eq!((single.lower, single.significant), (None, None));
    }

    #[test]
    fn geometric_mean_matches_scipy() {
        // scipy.stats.gmean([2, 8, 4]) = 4; interval exp(mean(logs) ± t.ppf(0.975, 2) ·
        // stdev(logs)/√3) with t.ppf(0.975, 2) = 4.302652729911275 → 0.714924…, 22.37999….
        let g = geometric_mean_ratio(&[2.0, 8.0, 4.0]).unwrap();
        assert!(close(g.value, 4.0, 1e-12));
        assert!(close(g.lower.unwrap(), 0.7149242471326541, 1e-9), "{g:?}");
        assert!(close(g.upper.unwrap(), 22.379993494655103, 1e-9), "{g:?}");
        assert_eq!((g.no_ci, g.range), (None, (2.0, 8.0)));
    }

    #[test]
    fn geometric_means_without_a_meaningful_interval_say_why() {
        // Two workloads: t with one degree of freedom is 12.7; the interval of a CPU vs a
        // datacenter GPU over two GEMMs (3244× and 238×) spanned 5.43e-5× to 1.42e10×.
        let g = geometric_mean_ratio(&[3244.0, 238.0]).unwrap();
        assert!(close(g.value, (3244.0f64 * 238.0).sqrt(), 1e-9));
        assert_eq!(
            (g.lower, g.upper, g.no_ci),
            (None, None, Some(NoCi::TooFew))
        );
        assert_eq!(g.range, (238.0, 3244.0));
        let g = geometric_mean_ratio(&[3.0]).unwrap();
        assert!(close(g.value, 3.0, 1e-15) && g.no_ci == Some(NoCi::TooFew));
        // Three ratios spread over four orders of magnitude: the interval is not printed.
        let g = geometric_mean_ratio(&[0.01, 1.0, 100.0]).unwrap();
        assert!(matches!(g.no_ci, Some(NoCi::TooSpread { lower, upper }) if upper / lower > 100.0));
        assert!(g.lower.is_none());
    }

    #[test]
    fn resampled_medians_equal_copying_and_selecting() {
        // Same draws, two ways: copy the drawn values and take their median, or count ranks.
        for n in 1..=9 {
            let samples: Vec<f64> = (0..n).map(|i| ((i * 7 + 3) % n) as f64 * 1.5).collect();
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let mut resampler = MedianResampler::new(&samples);
            let (mut r1, mut r2) = (SplitMix64::new(n as u64), SplitMix64::new(n as u64));
            for _ in 0..200 {
                let mut copy: Vec<f64> = (0..n).map(|_| sorted[r1.index(n)]).collect();
                assert_eq!(resampler.next(&mut r2), median(&mut copy), "n = {n}");
            }
        }
    }

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        // numpy.percentile(range(101), [2.5, 97.5]) → [2.5, 97.5]
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        let (lo, hi) = percentile_interval(&mut v);
        assert!(close(lo, 2.5, 1e-12) && close(hi, 97.5, 1e-12));
    }
}
