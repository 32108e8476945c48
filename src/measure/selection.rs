//! `--kernels`, `--dtypes`, `--sizes`: which of a suite's configurations to run.

use anyhow::{Result, bail};
use silirep_core::{Dtype, KernelSpec};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Selection {
    kernels: Vec<String>,
    dtypes: Vec<Dtype>,
    sizes: Vec<u64>,
}

impl Selection {
    pub fn parse(kernels: &[String], dtypes: &[String], sizes: &[String]) -> Result<Selection> {
        let kernels = kernels
            .iter()
            .map(|k| k.trim().to_ascii_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let dtypes = dtypes
            .iter()
            .filter(|d| !d.trim().is_empty())
            .map(|d| match Dtype::parse(d) {
                Some(d) => Ok(d),
                None => bail!(
                    "--dtypes: unknown dtype {d:?} (expected one of {})",
                    Dtype::ALL.map(Dtype::name).join(", ")
                ),
            })
            .collect::<Result<_>>()?;
        let sizes = sizes
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_size(s))
            .collect::<Result<_>>()?;
        Ok(Selection {
            kernels,
            dtypes,
            sizes,
        })
    }

    /// The suite's configurations that match; with `--sizes`, each matching configuration is
    /// run at every given size instead of its own.
    pub fn apply(&self, suite: &[KernelSpec]) -> Vec<KernelSpec> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for spec in suite {
            let kernel_ok = self.kernels.is_empty()
                || self
                    .kernels
                    .iter()
                    .any(|k| *k == spec.name() || k == spec.family());
            let dtype_ok =
                self.dtypes.is_empty() || spec.dtype().is_some_and(|d| self.dtypes.contains(&d));
            if !(kernel_ok && dtype_ok) {
                continue;
            }
            let variants: Vec<KernelSpec> = if self.sizes.is_empty() {
                vec![spec.clone()]
            } else {
                self.sizes
                    .iter()
                    .map(|s| spec.with_primary_size(*s))
                    .collect()
            };
            for v in variants {
                if seen.insert(v.clone()) {
                    out.push(v);
                }
            }
        }
        out
    }

    pub fn describe(&self) -> String {
        let record = self.as_record();
        if record.is_empty() {
            return "everything".into();
        }
        record
            .iter()
            .map(|(k, v)| format!("--{k} {v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// For the run file's settings.
    pub fn as_record(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if !self.kernels.is_empty() {
            map.insert("kernels".into(), self.kernels.join(","));
        }
        if !self.dtypes.is_empty() {
            map.insert(
                "dtypes".into(),
                self.dtypes
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        if !self.sizes.is_empty() {
            map.insert(
                "sizes".into(),
                self.sizes
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        map
    }
}

pub fn available_kernels(suite: &[KernelSpec]) -> Vec<String> {
    let names: BTreeSet<String> = suite.iter().map(KernelSpec::name).collect();
    names.into_iter().collect()
}

/// `1024`, `256MiB`, `1GiB`, `4k` → number (binary units for bytes, decimal `k`/`M`/`G`).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let Ok(value) = digits.parse::<u64>() else {
        bail!("--sizes: {text:?} is not a size (examples: 1024, 256MiB, 1GiB)");
    };
    let scale: u64 = match unit.trim() {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => bail!("--sizes: unknown unit {other:?} in {text:?} (use KiB, MiB, GiB, k, M, G)"),
    };
    value
        .checked_mul(scale)
        .filter(|v| *v > 0)
        .ok_or_else(|| anyhow::anyhow!("--sizes: {text:?} must be positive and fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::BandwidthOp;

    fn suite() -> Vec<KernelSpec> {
        vec![
            KernelSpec::Gemm {
                m: 256,
                n: 256,
                k: 256,
                dtype: Dtype::F32,
            },
            KernelSpec::Gemm {
                m: 256,
                n: 256,
                k: 256,
                dtype: Dtype::F16,
            },
            KernelSpec::Bandwidth {
                op: BandwidthOp::Triad,
                array_bytes: 1 << 28,
                dtype: Dtype::F64,
            },
        ]
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_by_family_name_and_dtype() {
        let s = Selection::parse(&strings(&["gemm"]), &strings(&["f16"]), &[]).unwrap();
        let picked = s.apply(&suite());
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].dtype(), Some(Dtype::F16));
        let s = Selection::parse(&strings(&["bandwidth_triad"]), &[], &[]).unwrap();
        assert_eq!(s.apply(&suite()).len(), 1);
    }

    #[test]
    fn sizes_replace_the_suite_sizes() {
        let s = Selection::parse(
            &strings(&["gemm"]),
            &strings(&["f32"]),
            &strings(&["512", "1024"]),
        )
        .unwrap();
        let sizes: Vec<u64> = s.apply(&suite()).iter().map(|k| k.primary_size()).collect();
        assert_eq!(sizes, vec![512, 1024]);
    }

    #[test]
    fn bad_input_is_explained() {
        let e = Selection::parse(&[], &strings(&["f99"]), &[]).unwrap_err();
        assert!(e.to_string().contains("unknown dtype \"f99\""), "{e}");
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("0").is_err());
    }
}
