//! Steps in a time-ordered series of runs of one configuration, and noise that is not a step.
//!
//! A series is one value per run (its median time or the rate from it, with the run's own
//! 95% CI). Steps are found
//! by binary segmentation on the logarithms: the split that minimises the squared error of a
//! two-level fit is kept when all three hold —
//! 1. the step (difference of the two levels' log means) exceeds the noise floor: smaller
//!    moves happen between runs of an unchanged machine;
//! 2. it exceeds what the scatter around the levels allows: |Δ| > t₀.₉₇₅(n−2)·s·√(1/n₁+1/n₂),
//!    s the residual standard deviation of the two-level fit;
//! 3. with three or more runs, the two levels fit better than a straight line: a slow drift
//!    (a machine heating up week by week, a shared VM filling up) is split best somewhere, but
//!    a line explains it with no step at all. (asv's `step_detect.py` fits a penalised
//!    piecewise-constant model; this test keeps a drift from reading as a staircase.)
//!
//! Each level is then searched again. What is left inside a level is noise: when it spreads
//! runs further apart than the noise floor, or two runs' CIs do not overlap, the series says
//! so rather than calling either run a regression.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Fewest runs in which a step is looked for.
pub const MIN_RUNS_FOR_STEPS: usize = 3;

/// One run's value (a time per iteration or a rate, > 0) with its 95% CI where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// A level change between consecutive runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// Index of the first run after the step.
    pub index: usize,
    /// Level after / level before (geometric means of the runs of each level): above 1 is
    /// slower for times, faster for rates.
    pub ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesVerdict {
    /// Steps in time order.
    pub steps: Vec<Step>,
    /// Largest spread (max / min − 1) of runs within one level.
    pub spread_within_levels: f64,
    /// Some two runs of one level have disjoint 95% CIs: the runs disagree more than their own
    /// samples allow, so run-to-run noise (clocks, neighbours, drift) is at work.
    pub runs_disagree: bool,
    /// No step explains a spread beyond the noise floor: drift or noise, not a regression.
    pub drift_without_step: bool,
}

/// Finds steps in `points` (time order); `noise_floor` is relative (0.03 = 3%).
pub fn analyse_series(points: &[SeriesPoint], noise_floor: f64) -> SeriesVerdict {
    let logs: Vec<f64> = points
        .iter()
        .map(|p| p.value.max(f64::MIN_POSITIVE).ln())
        .collect();
    let min_step = (1.0 + noise_floor.max(0.0)).ln();
    let mut cuts = Vec::new();
    // Two runs that differ are a step or noise, and nothing in two values tells which: pairs
    // are for the A/B test (`compare`), which states its noise floor.
    if points.len() >= MIN_RUNS_FOR_STEPS {
        segment(&logs, 0, min_step, &mut cuts);
    }
    cuts.sort_unstable();
    let mut bounds = vec![0];
    bounds.extend(&cuts);
    bounds.push(points.len());
    let steps = cuts
        .iter()
        .enumerate()
        .map(|(i, &cut)| {
            let before = mean(&logs[bounds[i]..cut]);
            let after = mean(&logs[cut..bounds[i + 2]]);
            Step {
                index: cut,
                ratio: (after - before).exp(),
            }
        })
        .collect();
    let (mut spread, mut disagree) = (0.0f64, false);
    for level in bounds.windows(2) {
        let runs = &points[level[0]..level[1]];
        if runs.is_empty() {
            continue;
        }
        let (lo, hi) = runs.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.value), hi.max(p.value))
        });
        spread = spread.max(hi / lo - 1.0);
        disagree |= runs.iter().enumerate().any(|(i, p)| {
            runs[i + 1..]
                .iter()
                .any(|q| match (p.lower, p.upper, q.lower, q.upper) {
                    (Some(pl), Some(pu), Some(ql), Some(qu)) => pu < ql || qu < pl,
                    _ => false,
                })
        });
    }
    SeriesVerdict {
        drift_without_step: spread > noise_floor,
        steps,
        spread_within_levels: spread,
        runs_disagree: disagree,
    }
}

fn segment(logs: &[f64], offset: usize, min_step: f64, cuts: &mut Vec<usize>) {
    let n = logs.len();
    if n < 2 {
        return;
    }
    let best_single = (1..n)
        .map(|k| (k, sse(&logs[..k]) + sse(&logs[k..])))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((cut, fit)) = best_single
        && accepted(logs, &[cut], fit, min_step)
    {
        cuts.push(offset + cut);
        segment(&logs[..cut], offset, min_step, cuts);
        segment(&logs[cut..], offset + cut, min_step, cuts);
        return;
    }
    // A level that rises and falls back (or the reverse) inside the series has no good single
    // split: both halves mix the two levels. Circular binary segmentation (Olshen et al.,
    // Biostatistics 2004) looks for the best pair of cuts instead.
    let best_pair = (1..n)
        .flat_map(|i| ((i + 1)..n).map(move |j| (i, j)))
        .map(|(i, j)| ((i, j), sse(&logs[..i]) + sse(&logs[i..j]) + sse(&logs[j..])))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some(((i, j), fit)) = best_pair
        && accepted(logs, &[i, j], fit, min_step)
    {
        cuts.extend([offset + i, offset + j]);
        segment(&logs[..i], offset, min_step, cuts);
        segment(&logs[i..j], offset + i, min_step, cuts);
        segment(&logs[j..], offset + j, min_step, cuts);
    }
}

/// The three tests of the module documentation for the levels that `cuts` make of `logs`
/// (`fit` is their squared error).
fn accepted(logs: &[f64], cuts: &[usize], fit: f64, min_step: f64) -> bool {
    let n = logs.len();
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(n);
    let levels: Vec<&[f64]> = bounds.windows(2).map(|w| &logs[w[0]..w[1]]).collect();
    let df = n as f64 - levels.len() as f64;
    let s = if df >= 1.0 { (fit / df).sqrt() } else { 0.0 };
    let t = StudentsT::new(0.0, 1.0, df.max(1.0))
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(12.7);
    let steps_stand_out = levels.windows(2).all(|pair| {
        let delta = mean(pair[1]) - mean(pair[0]);
        let se = s * (1.0 / pair[0].len() as f64 + 1.0 / pair[1].len() as f64).sqrt();
        delta.abs() > min_step && delta.abs() > t * se
    });
    // With as many levels as a line has parameters, a line can fit just as well; from one
    // more run on, the levels must beat it.
    steps_stand_out && (n <= levels.len() || fit < line_sse(logs))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn sse(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum()
}

/// Squared error of the least-squares line through (i, values[i]).
fn line_sse(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = mean(values);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, y)| (y - mean_y - slope * (i as f64 - mean_x)).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64], ci: f64) -> Vec<SeriesPoint> {
        values
            .iter()
            .map(|v| SeriesPoint {
                value: *v,
                lower: Some(v * (1.0 - ci)),
                upper: Some(v * (1.0 + ci)),
            })
            .collect()
    }

    #[test]
    fn a_planted_step_is_found_where_it_is() {
        let v = series(&[1.0, 1.002, 0.998, 1.001, 1.08, 1.081, 1.079], 0.002);
        let s = analyse_series(&v, 0.03);
        assert_eq!(s.steps.len(), 1, "{s:?}");
        assert_eq!(s.steps[0].index, 4);
        assert!((s.steps[0].ratio - 1.08).abs() < 0.002, "{s:?}");
        assert!(!s.drift_without_step && !s.runs_disagree, "{s:?}");
        // A step at the last run is a step too (the case of "did this update slow me down").
        let last = analyse_series(&series(&[1.0, 1.001, 0.999, 1.1], 0.002), 0.03);
        assert_eq!(last.steps.iter().map(|s| s.index).collect::<Vec<_>>(), [3]);
        // Two steps, up then down.
        let two = series(&[1.0, 1.0, 1.0, 1.2, 1.2, 1.2, 1.0, 1.0], 0.002);
        let s = analyse_series(&two, 0.03);
        assert_eq!(s.steps.iter().map(|s| s.index).collect::<Vec<_>>(), [3, 6]);
    }

    #[test]
    fn a_step_inside_the_noise_floor_is_no_step() {
        let v = series(&[1.0, 1.0, 1.0, 1.005, 1.005, 1.005], 0.001);
        let s = analyse_series(&v, 0.03);
        assert!(s.steps.is_empty(), "{s:?}");
        assert!(!s.drift_without_step);
        // Its CIs do not overlap, though: the runs disagree within the floor.
        assert!(s.runs_disagree);
    }

    #[test]
    fn drift_is_noise_not_a_step() {
        // 1% per run over six runs: the best split differs by 3%, but a line fits exactly.
        let v = series(&[1.0, 1.01, 1.02, 1.03, 1.04, 1.05], 0.002);
        let s = analyse_series(&v, 0.02);
        assert!(s.steps.is_empty(), "{s:?}");
        assert!(s.drift_without_step && s.runs_disagree, "{s:?}");
        assert!((s.spread_within_levels - 0.05).abs() < 1e-9);
    }

    #[test]
    fn scattered_runs_are_noise_not_steps() {
        // ±4% scatter with no level change: no split is beyond the scatter.
        let v = series(&[1.0, 1.04, 0.97, 1.03, 0.96, 1.02, 0.99, 1.04], 0.005);
        let s = analyse_series(&v, 0.03);
        assert!(s.steps.is_empty(), "{s:?}");
        assert!(s.drift_without_step && s.runs_disagree);
    }

    #[test]
    fn tiny_series() {
        assert!(analyse_series(&[], 0.03).steps.is_empty());
        let one = analyse_series(&series(&[1.0], 0.01), 0.03);
        assert!(one.steps.is_empty() && !one.drift_without_step);
        let two = analyse_series(&series(&[1.0, 1.1], 0.01), 0.03);
        assert!(two.steps.is_empty() && two.drift_without_step);
    }
}
