//! The two loops every softmax row runs — its maximum, then `e^(x·scale − shift)` with the
//! sum — written so they vectorise.
//!
//! Why not `f32::exp`: it is a scalar libm call of ~10 ns. Attention does one exponential per
//! score and 4·d FLOPs of GEMM per score (512 at head_dim 128), which the GEMM kernel runs
//! in about the same time, so scalar exponentials cost as much as both matrix products.
//! [`exp`] is branch-free arithmetic the compiler turns into 8-wide AVX2 code (or NEON),
//! accurate to about 2 ulp, which is far inside every attention tolerance.

use crate::common::x86_fma_available;

/// Lanes of independent accumulators: enough for the compiler to fill a vector register
/// without reassociating one serial sum (which strict IEEE order forbids).
const LANES: usize = 16;

/// e^x for the softmax range (x ≤ 0 after the max is subtracted; any x works). Inputs are
/// clamped to [−87, 88], so results never overflow and x = −∞ gives e⁻⁸⁷ ≈ 1.6·10⁻³⁸ rather
/// than 0, which the online softmax's first correction factor only needs to be ~0.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // e^x = 2^n · e^r with n = round(x·log₂e) and r = x − n·ln 2, |r| ≤ ½ ln 2. ln 2 is split
    // in two (Cody–Waite) so n·LN2_HI is exact and r keeps its precision for large |x|.
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to nearest
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // e^r by its Taylor series to degree 7: truncation error < 10⁻⁸ relative on |r| ≤ 0.35.
    const C: [f32; 8] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
    ];
    let p = C[0]
        + r * (C[1] + r * (C[2] + r * (C[3] + r * (C[4] + r * (C[5] + r * (C[6] + r * C[7]))))));
    // 2^n by writing n + 127 into the exponent field (n ∈ [−126, 127] after the clamp).
    // Wrapping add: it cannot overflow, and a checked add (dev builds) would be a branch that
    // stops the loop from vectorising.
    let two_n = f32::from_bits(((n as i32).wrapping_add(127) as u32) << 23);
    p * two_n
}

/// Largest entry of `row` (−∞ for an empty row).
pub fn row_max(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if x86_fma_available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { row_max_avx2(row) };
    }
    row_max_portable(row)
}

/// Replaces every x in `row` by e^(x·scale − shift) and returns their sum.
pub fn exp_shifted_sum(row: &mut [f32], scale: f32, shift: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if x86_fma_available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { exp_shifted_sum_avx2(row, scale, shift) };
    }
    exp_shifted_sum_portable(row, scale, shift)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_max_avx2(row: &[f32]) -> f32 {
    row_max_portable(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shifted_sum_avx2(row: &mut [f32], scale: f32, shift: f32) -> f32 {
    exp_shifted_sum_portable(row, scale, shift)
}

#[inline(always)]
fn row_max_portable(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, x) in lanes.iter_mut().zip(chunk) {
            // Not f32::max: its NaN rule keeps the compiler from using vector max.
            *m = if *x > *m { *x } else { *m };
        }
    }
    let tail = chunks.remainder().iter();
    lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, x| if *x > m { *x } else { m })
}

#[inline(always)]
fn exp_shifted_sum_portable(row: &mut [f32], scale: f32, shift: f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, x) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *x = exp(*x * scale - shift);
            *s += *x;
        }
    }
    let mut total: f32 = lanes.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp(*x * scale - shift);
        total += *x;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_f64() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * 1.2 * (i as f32 / 200_000.0);
            let exact = (x as f64).exp();
            let rel = ((exp(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
        }
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn row_helpers_match_the_scalar_loops() {
        // 37 entries: two full chunks of 16 and a tail of 5.
        let row: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0)
            .collect();
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(row_max(&row), max);
        assert_eq!(row_max(&[]), f32::NEG_INFINITY);
        let mut fast = row.clone();
        let total = exp_shifted_sum(&mut fast, 0.5, max * 0.5);
        let expected: Vec<f64> = row
            .iter()
            .map(|x| (*x as f64 * 0.5 - max as f64 * 0.5).exp())
            .collect();
        for (a, e) in fast.iter().zip(&expected) {
            assert!(
                (*a as f64 - e).abs() <= 4.0 * f32::EPSILON as f64 * e,
                "{a} vs {e}"
            );
        }
        let sum: f64 = expected.iter().sum();
        assert!((total as f64 - sum).abs() < 1e-5 * sum);
    }
}
