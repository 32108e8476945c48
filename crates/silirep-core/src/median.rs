//! The median of timing samples and a distribution-free confidence interval for it: what the
//! harness needs while measuring, to decide when enough samples were taken. The report's
//! statistics (bootstrap, t-intervals, ratios) live in the `silirep-stats` crate.

/// Median of `values`; `None` when empty or when any value is NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    let sorted = sorted_finite(values)?;
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    })
}

/// 95% confidence interval for the median from order statistics (binomial, normal
/// approximation; Conover, *Practical Nonparametric Statistics*, §3.2). Needs no assumption
/// about the timing distribution, which is usually skewed by interrupts and clock changes.
/// `None` below 6 samples, where no order-statistic interval reaches 95%.
pub fn median_ci95(values: &[f64]) -> Option<(f64, f64)> {
    let sorted = sorted_finite(values)?;
    let n = sorted.len();
    if n < 6 {
        return None;
    }
    let half_width = 1.959_963_984_540_054 * (n as f64).sqrt() / 2.0;
    let centre = n as f64 / 2.0;
    // 1-based ranks j = ⌊n/2 − z√n/2⌋ and k = ⌈1 + n/2 + z√n/2⌉, clamped to the sample.
    let lower_rank = ((centre - half_width).floor() as usize).max(1);
    let upper_rank = ((1.0 + centre + half_width).ceil() as usize).min(n);
    Some((sorted[lower_rank - 1], sorted[upper_rank - 1]))
}

/// Largest distance from the median to either CI bound, as a fraction of the median.
pub fn relative_ci_half_width(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let (lo, hi) = median_ci95(values)?;
    (m > 0.0).then(|| (m - lo).max(hi - m) / m)
}

fn sorted_finite(values: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_bad_input() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn median_ci_uses_the_right_order_statistics() {
        // n = 100: z·√n/2 = 9.8 → ranks ⌊40.2⌋ = 40 and ⌈60.8⌉ = 61.
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median_ci95(&values), Some((40.0, 61.0)));
        // n = 10: 3.099 → ranks ⌊1.9⌋ = 1 and ⌈9.1⌉ = 10.
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_ci95(&values), Some((1.0, 10.0)));
        assert_eq!(median_ci95(&[1.0; 5]), None);
    }

    #[test]
    fn zero_spread_gives_zero_half_width() {
        assert_eq!(relative_ci_half_width(&[2.0; 20]), Some(0.0));
    }
}
