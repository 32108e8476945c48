//! Roofline mathematics (Williams, Waterman & Patterson, 2009): attainable FLOP/s at
//! arithmetic intensity I is min(P, I·B) for compute ceiling P and memory ceiling B.

use serde::Serialize;
use silirep_core::rng::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Bound {
    Memory,
    Compute,
}

pub fn attainable_flops(intensity: f64, peak_flops: f64, bandwidth_bytes_per_s: f64) -> f64 {
    peak_flops.min(intensity * bandwidth_bytes_per_s)
}

/// FLOP/byte where the two ceilings meet.
pub fn ridge_point_flops_per_byte(peak_flops: f64, bandwidth_bytes_per_s: f64) -> f64 {
    peak_flops / bandwidth_bytes_per_s
}

/// Memory-bound left of the ridge point, compute-bound at and right of it.
pub fn bound(intensity: f64, peak_flops: f64, bandwidth_bytes_per_s: f64) -> Bound {
    if intensity < ridge_point_flops_per_byte(peak_flops, bandwidth_bytes_per_s) {
        Bound::Memory
    } else {
        Bound::Compute
    }
}

/// Achieved / attainable at this intensity (1 = on the roof).
pub fn roof_fraction(achieved: f64, intensity: f64, peak_flops: f64, bandwidth: f64) -> f64 {
    achieved / attainable_flops(intensity, peak_flops, bandwidth)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RooflineFit {
    pub peak_flops_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
    /// 95% bootstrap intervals (resampling points); `None` when too few resamples fit.
    pub peak_ci: Option<(f64, f64)>,
    pub bandwidth_ci: Option<(f64, f64)>,
    /// Root-mean-square residual in natural-log units.
    pub residual_rms_log: f64,
    pub points: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("a roofline fit needs at least 3 points, got {0}")]
    TooFewPoints(usize),
    #[error("point {0} is not positive and finite")]
    BadPoint(usize),
    #[error("the points do not span both a memory-bound and a compute-bound regime")]
    OneRegime,
}

/// Least-squares fit of log y = min(log P, log I + log B).
///
/// For a fixed split of the points (sorted by intensity) into a memory-bound left part and a
/// compute-bound right part, the optimum is closed-form: log B is the mean of log y − log I
/// on the left, log P the mean of log y on the right. Every split is tried and scored with
/// the full min() model; the best one wins. Confidence intervals come from refitting 1,000
/// bootstrap resamples of the points (fixed seed).
pub fn fit_roofline(points: &[(f64, f64)]) -> Result<RooflineFit, FitError> {
    if points.len() < 3 {
        return Err(FitError::TooFewPoints(points.len()));
    }
    if let Some(i) = points
        .iter()
        .position(|(x, y)| !(x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0))
    {
        return Err(FitError::BadPoint(i));
    }
    let (log_p, log_b, sse) = fit_logs(points).ok_or(FitError::OneRegime)?;
    let mut rng = SplitMix64::new(0x7007_f11e);
    let mut peaks = Vec::new();
    let mut bandwidths = Vec::new();
    let mut sample = vec![(0.0, 0.0); points.len()];
    for _ in 0..1000 {
        for slot in sample.iter_mut() {
            *slot = points[rng.index(points.len())];
        }
        if let Some((p, b, _)) = fit_logs(&sample) {
            peaks.push(p.exp());
            bandwidths.push(b.exp());
        }
    }
    let interval = |v: &mut Vec<f64>| {
        // Fewer than 90% of resamples spanning both regimes: no honest interval.
        (v.len() >= 900).then(|| {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            (at(0.025), at(0.975))
        })
    };
    Ok(RooflineFit {
        peak_flops_per_s: log_p.exp(),
        bandwidth_bytes_per_s: log_b.exp(),
        peak_ci: interval(&mut peaks),
        bandwidth_ci: interval(&mut bandwidths),
        residual_rms_log: (sse / points.len() as f64).sqrt(),
        points: points.len(),
    })
}

/// (log P, log B, SSE) of the best split, `None` if no split has both parts non-empty.
fn fit_logs(points: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = points.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<(f64, f64, f64)> = None;
    for split in 1..sorted.len() {
        let (left, right) = sorted.split_at(split);
        // Identical intensities on both sides of a split cannot be told apart.
        if left.last()?.0 == right.first()?.0 {
            continue;
        }
        let log_b = left.iter().map(|(x, y)| y - x).sum::<f64>() / left.len() as f64;
        let log_p = right.iter().map(|(_, y)| y).sum::<f64>() / right.len() as f64;
        let sse: f64 = sorted
            .iter()
            .map(|(x, y)| (y - log_p.min(x + log_b)).powi(2))
            .sum();
        if best.is_none_or(|(_, _, s)| sse < s) {
            best = Some((log_p, log_b, sse));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_bound_and_fraction() {
        // 14 TFLOP/s over 118 GB/s: ridge at 118.64 FLOP/byte.
        let (p, b) = (14e12, 118e9);
        assert!((ridge_point_flops_per_byte(p, b) - 118.644_067_796).abs() < 1e-6);
        assert_eq!(bound(1.0, p, b), Bound::Memory);
        assert_eq!(bound(1000.0, p, b), Bound::Compute);
        assert_eq!(attainable_flops(10.0, p, b), 1.18e12);
        assert!((roof_fraction(0.59e12, 10.0, p, b) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn fit_recovers_known_ceilings_from_noisy_points() {
        let (p, b) = (2e12, 100e9);
        let mut rng = SplitMix64::new(3);
        let points: Vec<(f64, f64)> = (0..12)
            .map(|i| {
                let intensity = 2f64.powi(i - 2); // 0.25 .. 512 FLOP/byte, ridge at 20
                let noise =
                    1.0 + 0.04 * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
                (intensity, attainable_flops(intensity, p, b) * noise)
            })
            .collect();
        let fit = fit_roofline(&points).unwrap();
        assert!((fit.peak_flops_per_s / p - 1.0).abs() < 0.03, "{fit:?}");
        assert!(
            (fit.bandwidth_bytes_per_s / b - 1.0).abs() < 0.03,
            "{fit:?}"
        );
        let (lo, hi) = fit.peak_ci.unwrap();
        assert!(lo <= fit.peak_flops_per_s && fit.peak_flops_per_s <= hi);
        assert_eq!(fit, fit_roofline(&points).unwrap(), "deterministic");
    }

    #[test]
    fn fit_refuses_what_it_cannot_fit() {
        assert_eq!(fit_roofline(&[(1.0, 1.0)]), Err(FitError::TooFewPoints(1)));
        assert_eq!(
            fit_roofline(&[(1.0, 1.0), (2.0, -1.0), (3.0, 1.0)]),
            Err(FitError::BadPoint(1))
        );
        assert_eq!(
            fit_roofline(&[(1.0, 1.0), (1.0, 1.1), (1.0, 0.9)]),
            Err(FitError::OneRegime)
        );
    }
}
