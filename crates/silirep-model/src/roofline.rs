//! Roofline mathematics (Williams, Waterman & Patterson, 2009): attainable FLOP/s at
//! arithmetic intensity I is min(P, I·B) for compute ceiling P and memory ceiling B. The
//! two-roof special case of [`crate::predict_phase`], which takes any number of roofs; the
//! report's per-machine rooflines are drawn with these.

use serde::Serialize;

/// Which of a roofline's two ceilings limits a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Bound {
    /// Left of the ridge point: bytes moved set the time.
    Memory,
    /// At or right of the ridge point: FLOPs set the time.
    Compute,
}

/// FLOP/s a workload of this intensity can reach under the two ceilings.
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
}
