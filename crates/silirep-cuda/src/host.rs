//! Host-side helpers: element types as stored on the device, decoding them for verification,
//! and a small seeded generator for choosing which entries to check.

use silirep_core::{Dtype, KernelError};

/// How a value is stored in device memory (TF32 is stored as f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    F64,
    F32,
    F16,
    Bf16,
    E4m3,
}

impl ElemType {
    pub fn of(dtype: Dtype) -> Result<ElemType, KernelError> {
        Ok(match dtype {
            Dtype::F64 => ElemType::F64,
            Dtype::F32 | Dtype::Tf32 => ElemType::F32,
            Dtype::F16 => ElemType::F16,
            Dtype::Bf16 => ElemType::Bf16,
            Dtype::Fp8E4m3 => ElemType::E4m3,
            other => {
                return Err(KernelError::Unsupported(format!(
                    "{other} storage in the CUDA backend"
                )));
            }
        })
    }

    pub fn size_bytes(self) -> usize {
        match self {
            ElemType::F64 => 8,
            ElemType::F32 => 4,
            ElemType::F16 | ElemType::Bf16 => 2,
            ElemType::E4m3 => 1,
        }
    }

    pub fn fill_kernel(self) -> &'static str {
        match self {
            ElemType::F64 => "fill_random_f64",
            ElemType::F32 => "fill_random_f32",
            ElemType::F16 => "fill_random_f16",
            ElemType::Bf16 => "fill_random_bf16",
            ElemType::E4m3 => "fill_random_e4m3",
        }
    }

    /// Suffix of the 16-bit kernels (`_f16`, `_bf16`).
    pub fn half_suffix(self) -> Result<&'static str, KernelError> {
        match self {
            ElemType::F16 => Ok("f16"),
            ElemType::Bf16 => Ok("bf16"),
            other => Err(KernelError::Unsupported(format!(
                "{other:?} in a 16-bit kernel"
            ))),
        }
    }

    /// Unit roundoff of the storage format (half an ulp at 1.0).
    pub fn unit_roundoff(self) -> f64 {
        match self {
            ElemType::F64 => 2f64.powi(-53),
            ElemType::F32 => 2f64.powi(-24),
            ElemType::F16 => 2f64.powi(-11),
            ElemType::Bf16 => 2f64.powi(-8),
            ElemType::E4m3 => 2f64.powi(-4),
        }
    }

    pub fn decode(self, raw: &[u8]) -> Vec<f64> {
        match self {
            ElemType::F64 => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            ElemType::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            ElemType::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
                .collect(),
            ElemType::Bf16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
                .collect(),
            ElemType::E4m3 => raw.iter().map(|b| e4m3_to_f64(*b)).collect(),
        }
    }
}

/// OCP FP8 E4M3 (bias 7, no infinities, S.1111.111 is NaN).
pub fn e4m3_to_f64(bits: u8) -> f64 {
    let sign = if bits & 0x80 != 0 { -1.0 } else { 1.0 };
    let exponent = ((bits >> 3) & 0xf) as i32;
    let mantissa = (bits & 0x7) as f64;
    if exponent == 0xf && bits & 0x7 == 0x7 {
        return f64::NAN;
    }
    if exponent == 0 {
        sign * mantissa / 8.0 * 2f64.powi(-6)
    } else {
        sign * (1.0 + mantissa / 8.0) * 2f64.powi(exponent - 7)
    }
}

/// The workspace's one generator (silirep-core), under the name the CPU backend uses too.
pub use silirep_core::rng::SplitMix64 as Rng;

/// The largest power of two not above `x` (weights are drawn from ±this so that generated
/// values stay exact).
pub fn power_of_two_at_most(x: f64) -> f32 {
    2f32.powi(x.log2().floor() as i32)
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3_decodes_normals_subnormals_and_nan() {
        assert_eq!(e4m3_to_f64(0x38), 1.0); // exponent 7, mantissa 0
        assert_eq!(e4m3_to_f64(0x7e), 448.0); // the largest finite value
        assert_eq!(e4m3_to_f64(0x01), 2f64.powi(-9)); // smallest subnormal
        assert_eq!(e4m3_to_f64(0xb8), -1.0);
        assert!(e4m3_to_f64(0x7f).is_nan());
    }

    #[test]
    fn half_types_decode_little_endian() {
        let one_f16 = half::f16::from_f32(1.5).to_bits().to_le_bytes();
        assert_eq!(ElemType::F16.decode(&one_f16), vec![1.5]);
        let bf = half::bf16::from_f32(-2.0).to_bits().to_le_bytes();
        assert_eq!(ElemType::Bf16.decode(&bf), vec![-2.0]);
    }

    #[test]
    fn weight_bounds_are_powers_of_two() {
        assert_eq!(power_of_two_at_most(1.0 / 64.0), 1.0 / 64.0);
        assert_eq!(power_of_two_at_most(1.0 / (14336f64).sqrt()), 1.0 / 128.0);
    }
}
