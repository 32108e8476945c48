//! Pieces every CPU kernel uses: seeded random fill, timing, matrix products.

use gemm::{Parallelism, f16};
use silirep_core::KernelError;
use std::time::Instant;

/// The shared seeded generator (SplitMix64): inputs and sampled checks are the same on
/// every machine.
pub use silirep_core::rng::SplitMix64 as Rng;

/// `len` values uniform in [lo, hi): never all zeros, so no kernel can be timed on data a
/// CPU or compiler might shortcut.
pub fn random_f32(len: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| rng.uniform(lo as f64, hi as f64) as f32)
        .collect()
}

/// [`random_f32`] that reports out-of-memory instead of aborting the process.
pub fn try_random_f32(
    len: usize,
    lo: f32,
    hi: f32,
    seed: u64,
    what: &str,
) -> Result<Vec<f32>, KernelError> {
    let mut v = try_alloc(len, 0.0f32, what)?;
    let mut rng = Rng::new(seed);
    v.iter_mut()
        .for_each(|x| *x = rng.uniform(lo as f64, hi as f64) as f32);
    Ok(v)
}

/// Allocates `len` elements or reports out-of-memory instead of aborting the process.
pub fn try_alloc<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>, KernelError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        KernelError::OutOfMemory(format!(
            "{what}: {} bytes could not be allocated",
            len as f64 * std::mem::size_of::<T>() as f64
        ))
    })?;
    v.resize(len, value);
    Ok(v)
}

/// Whether the AVX2+FMA versions of hot loops can run. The x86-64 baseline target has no
/// FMA, so without a `target_feature` version `mul_add` becomes a libm call (100× slower)
/// and plain loops stay 4 lanes wide. Always false elsewhere: aarch64 has FMA in its base
/// instruction set and needs no special version.
pub fn x86_fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Times `iterations` calls of `body`, one sample per call, on the monotonic clock.
pub fn time_each(iterations: u32, mut body: impl FnMut()) -> Vec<f64> {
    (0..iterations)
        .map(|_| {
            let start = Instant::now();
            body();
            start.elapsed().as_secs_f64()
        })
        .collect()
}

/// Row-major `c[m×n] = aᵀ · b` with `a` stored as `[k×m]` and `b` as `[k×n]`: the weight
/// gradient `Xᵀ·dY` of a projection, without materialising the transpose.
pub fn matmul_f32_lhs_transposed(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    threads: usize,
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the slices cover every index the strides reach (asserted above).
    unsafe { gemm_f32_strided(c, n, a, (m, 1), b, (1, n), (m, n, k), false, threads) }
}

/// Row-major `c[m×n] = a[m×k] · b`, where `b` is `[k×n]` or, with `b_transposed`, `[n×k]`.
pub fn matmul_f32(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    b_transposed: bool,
    threads: usize,
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    let b_strides = if b_transposed { (k, 1) } else { (1, n) };
    // Wide products run as panels of at most PANEL columns of C: the gemm crate's own
    // blocking loses ~8% at n = 4096 on a 32 MiB-L3 machine, panels of 2048 recover it.
    const PANEL: usize = 2048;
    for j0 in (0..n).step_by(PANEL) {
        let width = PANEL.min(n - j0);
        // SAFETY: the slices cover every index the strides reach (asserted above; the panel
        // starts at column j0 < n of C and of B).
        unsafe {
            gemm_f32_strided(
                &mut c[j0..],
                n,
                a,
                (1, k),
                &b[j0 * b_strides.0..],
                b_strides,
                (m, width, k),
                false,
                threads,
            )
        }
    }
}

/// Row-major `c[m×n] += a[m×k] · b[k×n]`, single-threaded: the fused attention's
/// `O += P·V`, accumulated in place instead of through a temporary.
pub fn matmul_f32_accumulate(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the slices cover every index the strides reach (asserted above).
    unsafe { gemm_f32_strided(c, n, a, (1, k), b, (1, n), (m, n, k), true, 1) }
}

/// `c = a · b` (or `c += a · b` with `accumulate`) for row-major `c` with row stride
/// `c_row_stride`; `a` and `b` are given by their (column, row) strides, so transposed
/// operands cost nothing.
///
/// # Safety
/// Every index the shape and strides reach must lie inside the slices.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32_strided(
    c: &mut [f32],
    c_row_stride: usize,
    a: &[f32],
    (a_cs, a_rs): (usize, usize),
    b: &[f32],
    (b_cs, b_rs): (usize, usize),
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    threads: usize,
) {
    // SAFETY: the caller guarantees the bounds; `c` is borrowed mutably, so it does not
    // alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_row_stride as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            // dst = alpha·dst + beta·a·b, dst read only when accumulating.
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism(threads),
        )
    }
}

pub fn matmul_f16(
    c: &mut [f16],
    a: &[f16],
    b: &[f16],
    (m, n, k): (usize, usize, usize),
    threads: usize,
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: as in `matmul_f32`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            f16::from_f32(0.0),
            f16::from_f32(1.0),
            false,
            false,
            false,
            parallelism(threads),
        )
    }
}

fn parallelism(threads: usize) -> Parallelism {
    if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// f64 dot product of row `i` of `a[·×k]` with column `j` of `b[k×n]`: the reference for
/// sampled GEMM entries.
pub fn reference_entry(a: &[f32], b: &[f32], i: usize, j: usize, k: usize, n: usize) -> f64 {
    (0..k)
        .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lhs_transposed_product_matches_a_plain_product() {
        let (m, n, k) = (5, 6, 7);
        let a_t = random_f32(k * m, -1.0, 1.0, 3);
        let b = random_f32(k * n, -1.0, 1.0, 4);
        let mut c = vec![0.0f32; m * n];
        matmul_f32_lhs_transposed(&mut c, &a_t, &b, (m, n, k), 1);
        for i in 0..m {
            for j in 0..n {
                let expected: f32 = (0..k).map(|p| a_t[p * m + i] * b[p * n + j]).sum();
                assert!((c[i * n + j] - expected).abs() < 1e-5);
            }
        }
    }

    /// Products wider than one panel must match a plain triple loop in both B layouts.
    #[test]
    fn matmul_f32_panels_match_a_plain_product() {
        let (m, n, k) = (3, 2 * 2048 + 5, 7);
        let a = random_f32(m * k, -1.0, 1.0, 1);
        let b = random_f32(k * n, -1.0, 1.0, 2);
        let b_t: Vec<f32> = (0..n * k).map(|idx| b[(idx % k) * n + idx / k]).collect();
        for (operand, transposed) in [(&b, false), (&b_t, true)] {
            let mut c = vec![0.0f32; m * n];
            matmul_f32(&mut c, &a, operand, (m, n, k), transposed, 1);
            for i in 0..m {
                for j in 0..n {
                    let expected: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                    assert!(
                        (c[i * n + j] - expected).abs() < 1e-5,
                        "c[{i},{j}] = {} expected {expected} (transposed {transposed})",
                        c[i * n + j]
                    );
                }
            }
        }
    }
}
