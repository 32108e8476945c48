//! `--kernels`, `--dtypes`, `--sizes`: which of a suite's configurations to run.
//!
//! Every filter is checked against what the kernels are before anything runs: a kernel name
//! that does not exist gets the closest names, a size in the wrong unit (bytes for a GEMM
//! dimension) is refused with what the kernel's size means, and a selection that matches
//! nothing says where the requested dtype can be found.

use anyhow::{Result, bail};
use silirep_core::{Dtype, KernelSpec, SizeMeaning, Suite};
use std::collections::{BTreeMap, BTreeSet};

/// One `--sizes` entry: a plain count (GEMM dimension, sequence length, batch, FMAs) or a
/// byte count (bandwidth arrays), as the unit written says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeArg {
    /// As the user wrote it, for messages and the run file's record.
    pub text: String,
    pub value: u64,
    pub is_bytes: bool,
}

#[derive(Debug, Default)]
pub struct Selection {
    kernels: Vec<String>,
    dtypes: Vec<Dtype>,
    sizes: Vec<SizeArg>,
    causal: bool,
    /// `--decode-context`: the KV-cache positions every selected decode attends over.
    decode_context: Option<u64>,
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
                None => {
                    let names = Dtype::ALL.map(Dtype::name);
                    bail!(
                        "--dtypes: unknown dtype {d:?}{}; expected one of {}",
                        crate::util::did_you_mean(d, names.iter().copied()),
                        names.join(", ")
                    )
                }
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
            causal: false,
            decode_context: None,
        })
    }

    /// `--causal`: the selected attention configurations run with the causal mask.
    pub fn with_causal(self, causal: bool) -> Selection {
        Selection { causal, ..self }
    }

    /// `--decode-context`: the selected decode configurations attend over `context` cached
    /// positions instead of the suite's.
    pub fn with_decode_context(self, decode_context: Option<u64>) -> Selection {
        Selection {
            decode_context,
            ..self
        }
    }

    /// Whether `--decode-context` was given.
    pub fn has_decode_context(&self) -> bool {
        self.decode_context.is_some()
    }

    /// Whether `--sizes` was given (those configurations are the user's, not the suite's).
    pub fn has_sizes(&self) -> bool {
        !self.sizes.is_empty()
    }

    /// Refuses `--kernels` names that no configuration of the backend has (`known`: every
    /// configuration of its largest suite), naming the closest ones.
    pub fn check_kernel_names(&self, known: &[KernelSpec]) -> Result<()> {
        let mut names: BTreeSet<String> = known.iter().map(KernelSpec::name).collect();
        names.extend(known.iter().map(|k| k.family().to_string()));
        for k in &self.kernels {
            if !names.contains(k) {
                bail!(
                    "--kernels: unknown kernel {k:?}{}; this backend measures {}",
                    crate::util::did_you_mean(k, names.iter().map(String::as_str)),
                    available_kernels(known).join(", ")
                );
            }
        }
        Ok(())
    }

    /// The suite's configurations that match; with `--sizes`, each matching configuration is
    /// run at every given size whose unit fits what its size means (bytes for bandwidth
    /// arrays, plain numbers for the rest). Fails when a size fits none of the selected
    /// kernels or a selected kernel gets no size, so no size is silently ignored or
    /// reinterpreted.
    pub fn apply(&self, suite: &[KernelSpec]) -> Result<Vec<KernelSpec>> {
        let specs = self.apply_filters(suite)?;
        if self.causal
            && !specs
                .iter()
                .any(|s| matches!(s, KernelSpec::Attention { .. }))
        {
            bail!(
                "--causal applies to attention, and the selection has no attention configuration; \
                 add attention to --kernels"
            );
        }
        if self.decode_context.is_some()
            && !specs.is_empty()
            && !specs.iter().any(|s| matches!(s, KernelSpec::Decode { .. }))
        {
            bail!(
                "--decode-context: the selection has no decode configuration (add --kernels decode)"
            );
        }
        Ok(dedup(specs.into_iter().map(|mut spec| {
            match &mut spec {
                KernelSpec::Attention { causal, .. } if self.causal => *causal = true,
                KernelSpec::Decode { context, .. } => {
                    if let Some(c) = self.decode_context {
                        *context = c;
                    }
                }
                _ => {}
            }
            spec
        })))
    }

    fn apply_filters(&self, suite: &[KernelSpec]) -> Result<Vec<KernelSpec>> {
        let matched: Vec<&KernelSpec> = suite
            .iter()
            .filter(|spec| self.kernel_matches(spec) && self.dtype_matches(spec))
            .collect();
        if self.sizes.is_empty() {
            return Ok(dedup(matched.into_iter().cloned()));
        }
        for size in &self.sizes {
            if matched.is_empty() {
                break;
            }
            if !matched
                .iter()
                .any(|spec| spec.primary_size_meaning().is_bytes() == size.is_bytes)
            {
                bail!("{}", size_mismatch(size, &matched));
            }
        }
        let mut starved: BTreeMap<String, SizeMeaning> = BTreeMap::new();
        let mut out = Vec::new();
        for spec in &matched {
            let meaning = spec.primary_size_meaning();
            let fitting: Vec<&SizeArg> = self
                .sizes
                .iter()
                .filter(|s| s.is_bytes == meaning.is_bytes())
                .collect();
            if fitting.is_empty() {
                starved.insert(spec.name(), meaning);
            }
            out.extend(fitting.iter().map(|s| spec.with_primary_size(s.value)));
        }
        if let Some((_, meaning)) = starved.iter().next() {
            let names: Vec<&str> = starved.keys().map(String::as_str).collect();
            bail!(
                "--sizes {} gives no size for {}, whose size is {}{}; add one (e.g. {}) or \
                 leave {} out with --kernels",
                self.sizes_text(),
                names.join(", "),
                meaning.describe(),
                if meaning.is_bytes() {
                    " (a byte unit: B, kB, MB, GB or KiB, MiB, GiB)"
                } else {
                    " (a plain number)"
                },
                meaning.example(),
                if names.len() == 1 { "it" } else { "them" }
            );
        }
        Ok(dedup(out.into_iter()))
    }

    fn kernel_matches(&self, spec: &KernelSpec) -> bool {
        self.kernels.is_empty()
            || self
                .kernels
                .iter()
                .any(|k| *k == spec.name() || k == spec.family().name())
    }

    fn dtype_matches(&self, spec: &KernelSpec) -> bool {
        self.dtypes.is_empty() || spec.dtype().is_some_and(|d| self.dtypes.contains(&d))
    }

    /// Why nothing of `suite` matched, and where the requested dtypes can be found:
    /// `suites` holds every suite of the backend.
    pub fn explain_empty(
        &self,
        backend: &str,
        suite: Suite,
        suites: &[(Suite, Vec<KernelSpec>)],
    ) -> String {
        let mut text = format!(
            "no configuration of the {} suite on {backend} matches the selection ({})",
            suite.name(),
            self.describe()
        );
        let this_suite: &[KernelSpec] = suites
            .iter()
            .find(|(s, _)| *s == suite)
            .map(|(_, specs)| specs.as_slice())
            .unwrap_or(&[]);
        for dtype in &self.dtypes {
            // Where this dtype exists for the selected kernels, in any suite.
            let mut found: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
            for (s, specs) in suites {
                for spec in specs.iter().filter(|k| k.dtype() == Some(*dtype)) {
                    if self.kernel_matches(spec) {
                        found.entry(spec.name()).or_default().insert(s.name());
                    }
                }
            }
            let anywhere: BTreeSet<&str> = suites
                .iter()
                .flat_map(|(_, specs)| specs.iter().filter_map(|k| k.dtype().map(Dtype::name)))
                .collect();
            if !anywhere.contains(dtype.name()) {
                text.push_str(&format!(
                    "; no kernel on {backend} measures {dtype} (it measures {})",
                    anywhere.into_iter().collect::<Vec<_>>().join(", ")
                ));
            } else if found.is_empty() {
                let elsewhere: BTreeSet<String> = this_suite
                    .iter()
                    .filter(|k| k.dtype() == Some(*dtype))
                    .map(KernelSpec::name)
                    .collect();
                text.push_str(&format!(
                    "; {dtype} is measured by {} in the {} suite on {backend}",
                    if elsewhere.is_empty() {
                        "no kernel".to_string()
                    } else {
                        elsewhere.into_iter().collect::<Vec<_>>().join(", ")
                    },
                    suite.name()
                ));
            } else {
                let places: Vec<String> = found
                    .iter()
                    .map(|(k, s)| {
                        format!(
                            "{k} ({} suite{})",
                            s.iter().copied().collect::<Vec<_>>().join(", "),
                            if s.len() == 1 { "" } else { "s" }
                        )
                    })
                    .collect();
                text.push_str(&format!("; {dtype} is measured by {}", places.join(", ")));
            }
        }
        if !self.kernels.is_empty() {
            let dtypes: BTreeSet<&str> = this_suite
                .iter()
                .filter(|k| self.kernel_matches(k))
                .filter_map(|k| k.dtype().map(Dtype::name))
                .collect();
            if !dtypes.is_empty() {
                text.push_str(&format!(
                    "; {} runs in {} here",
                    self.kernels.join(","),
                    dtypes.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        text
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

    fn sizes_text(&self) -> String {
        self.sizes
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// For the run file's settings: the filters as given.
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
            map.insert("sizes".into(), self.sizes_text());
        }
        if self.causal {
            map.insert("causal".into(), "true".into());
        }
        if let Some(context) = self.decode_context {
            map.insert("decode_context".into(), context.to_string());
        }
        map
    }
}

fn dedup(specs: impl Iterator<Item = KernelSpec>) -> Vec<KernelSpec> {
    let mut seen = BTreeSet::new();
    specs.filter(|s| seen.insert(s.clone())).collect()
}

/// A size whose unit fits none of the selected kernels: say what their sizes mean.
fn size_mismatch(size: &SizeArg, matched: &[&KernelSpec]) -> String {
    let mut meanings: BTreeMap<SizeMeaning, BTreeSet<String>> = BTreeMap::new();
    for spec in matched {
        meanings
            .entry(spec.primary_size_meaning())
            .or_default()
            .insert(spec.name());
    }
    let explained: Vec<String> = meanings
        .iter()
        .map(|(meaning, names)| {
            format!(
                "for {} it is {}, e.g. --sizes {}",
                names.iter().cloned().collect::<Vec<_>>().join(", "),
                meaning.describe(),
                meaning.example()
            )
        })
        .collect();
    if size.is_bytes {
        format!(
            "--sizes {}: a byte size, but none of the selected kernels is sized in bytes: {}; \
             byte sizes apply to bandwidth kernels only",
            size.text,
            explained.join("; ")
        )
    } else {
        format!(
            "--sizes {}: a plain number, but the selected kernels are sized in bytes: {}; \
             write the unit (256MiB = 256·2^20 bytes, 256MB = 256·10^6 bytes)",
            size.text,
            explained.join("; ")
        )
    }
}

pub fn available_kernels(suite: &[KernelSpec]) -> Vec<String> {
    let names: BTreeSet<String> = suite.iter().map(KernelSpec::name).collect();
    names.into_iter().collect()
}

/// Parses one `--sizes` entry. Units are explicit and case-sensitive, SI prefixes decimal
/// and IEC prefixes binary, as everywhere else:
///
/// * plain counts: `4096`; `4k` = 4,000, `4M` = 4·10^6, `4G` = 4·10^9; `4Ki` = 4,096,
///   `4Mi` = 4·2^20, `4Gi` = 4·2^30;
/// * bytes (bandwidth arrays): `512B`; `1kB` = 1,000 B, `1MB` = 10^6 B, `1GB` = 10^9 B,
///   `1TB`; `1KiB` = 1,024 B, `1MiB` = 2^20 B, `1GiB` = 2^30 B, `1TiB`.
pub fn parse_size(text: &str) -> Result<SizeArg> {
    const UNITS: &str = "k, M, G, Ki, Mi, Gi for counts; B, kB, MB, GB, KiB, MiB, GiB for bytes";
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let Ok(value) = digits.parse::<u64>() else {
        bail!(
            "--sizes: {text:?} is not a size: a whole number with an optional unit ({UNITS}; \
             examples: 4096, 4Ki, 256MiB, 1GB)"
        );
    };
    let (scale, is_bytes): (u64, bool) = match unit.trim() {
        "" => (1, false),
        "k" | "K" => (1_000, false),
        "M" => (1_000_000, false),
        "G" => (1_000_000_000, false),
        "Ki" => (1 << 10, false),
        "Mi" => (1 << 20, false),
        "Gi" => (1 << 30, false),
        "B" => (1, true),
        "kB" | "KB" => (1_000, true),
        "MB" => (1_000_000, true),
        "GB" => (1_000_000_000, true),
        "TB" => (1_000_000_000_000, true),
        "KiB" => (1 << 10, true),
        "MiB" => (1 << 20, true),
        "GiB" => (1 << 30, true),
        "TiB" => (1 << 40, true),
        other => bail!("--sizes: unknown unit {other:?} in {text:?} (units: {UNITS})"),
    };
    let value = value
        .checked_mul(scale)
        .filter(|v| *v > 0)
        .ok_or_else(|| anyhow::anyhow!("--sizes: {text:?} must be positive and fit in 64 bits"))?;
    Ok(SizeArg {
        text: t.to_string(),
        value,
        is_bytes,
    })
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

    #[test]
    fn causal_marks_attention_only_and_needs_some() {
        let attention = KernelSpec::Attention {
            implementation: silirep_core::AttentionImpl::Fused,
            batch: 1,
            heads: 32,
            seq_len: 1024,
            head_dim: 128,
            dtype: Dtype::F16,
            causal: false,
        };
        let mut with_attention = suite();
        with_attention.push(attention.clone());
        let s = Selection::parse(&[], &[], &strings(&["2048"]))
            .unwrap()
            .with_causal(true);
        let specs = s
            .apply(
                &with_attention[..2]
                    .iter()
                    .chain([&attention])
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(specs.len(), 3);
        assert!(specs.iter().all(|spec| match spec {
            KernelSpec::Attention {
                causal, seq_len, ..
            } => *causal && *seq_len == 2048,
            _ => true,
        }));
        assert_eq!(
            s.as_record().get("causal").map(String::as_str),
            Some("true")
        );
        let gemm_only = Selection::parse(&strings(&["gemm"]), &[], &[])
            .unwrap()
            .with_causal(true);
        let err = gemm_only.apply(&with_attention).unwrap_err().to_string();
        assert!(err.contains("--causal applies to attention"), "{err}");
        // Without the flag nothing changes.
        let plain = Selection::parse(&strings(&["attention"]), &[], &[]).unwrap();
        assert_eq!(plain.apply(&with_attention).unwrap(), vec![attention]);
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn size(text: &str) -> (u64, bool) {
        let s = parse_size(text).unwrap();
        (s.value, s.is_bytes)
    }

    #[test]
    fn filters_by_family_name_and_dtype() {
        let s = Selection::parse(&strings(&["gemm"]), &strings(&["f16"]), &[]).unwrap();
        let picked = s.apply(&suite()).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].dtype(), Some(Dtype::F16));
        let s = Selection::parse(&strings(&["bandwidth_triad"]), &[], &[]).unwrap();
        assert_eq!(s.apply(&suite()).unwrap().len(), 1);
    }

    #[test]
    fn sizes_replace_the_suite_sizes() {
        let s = Selection::parse(
            &strings(&["gemm"]),
            &strings(&["f32"]),
            &strings(&["512", "1Ki"]),
        )
        .unwrap();
        let sizes: Vec<u64> = s
            .apply(&suite())
            .unwrap()
            .iter()
            .map(|k| k.primary_size())
            .collect();
        assert_eq!(sizes, vec![512, 1024]);
    }

    #[test]
    fn size_units_are_decimal_for_si_and_binary_for_iec() {
        assert_eq!(size("4096"), (4096, false));
        assert_eq!(size("4k"), (4_000, false));
        assert_eq!(size("4K"), (4_000, false));
        assert_eq!(size("4Ki"), (4_096, false));
        assert_eq!(size("2M"), (2_000_000, false));
        assert_eq!(size("2Mi"), (2 << 20, false));
        assert_eq!(size("1G"), (1_000_000_000, false));
        assert_eq!(size("1Gi"), (1 << 30, false));
        assert_eq!(size("512B"), (512, true));
        assert_eq!(size("1kB"), (1_000, true));
        assert_eq!(size("1KiB"), (1_024, true));
        assert_eq!(size("256MB"), (256_000_000, true));
        assert_eq!(size("256MiB"), (256 << 20, true));
        assert_eq!(size("1GB"), (1_000_000_000, true));
        assert_eq!(size("1GiB"), (1 << 30, true));
        assert_eq!(size(" 2TiB "), (2 << 40, true));
    }

    #[test]
    fn bad_sizes_are_explained() {
        for (text, expected) in [
            ("12XB", "unknown unit \"XB\""),
            ("4m", "unknown unit \"m\""),
            ("1.5GiB", "unknown unit \".5GiB\""),
            ("0", "must be positive"),
            ("0MiB", "must be positive"),
            ("99999999999GiB", "fit in 64 bits"),
            ("MiB", "is not a size"),
            ("-1", "is not a size"),
        ] {
            let e = parse_size(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn a_byte_size_for_a_gemm_is_refused_with_what_a_gemm_size_is() {
        let s = Selection::parse(&strings(&["gemm"]), &[], &strings(&["1GB"])).unwrap();
        let e = s.apply(&suite()).unwrap_err().to_string();
        assert!(e.contains("--sizes 1GB: a byte size"), "{e}");
        assert!(e.contains("for gemm it is the matrix dimension"), "{e}");
        assert!(e.contains("--sizes 4096"), "{e}");
    }

    #[test]
    fn a_plain_number_for_bandwidth_asks_for_a_byte_unit() {
        let s = Selection::parse(&strings(&["bandwidth"]), &[], &strings(&["4096"])).unwrap();
        let e = s.apply(&suite()).unwrap_err().to_string();
        assert!(e.contains("--sizes 4096: a plain number"), "{e}");
        assert!(e.contains("256MiB"), "{e}");
    }

    #[test]
    fn mixed_sizes_go_to_the_kernels_they_fit_and_none_is_left_without() {
        let s = Selection::parse(
            &strings(&["gemm", "bandwidth_triad"]),
            &strings(&["f32", "f64"]),
            &strings(&["1024", "64MiB"]),
        )
        .unwrap();
        let picked = s.apply(&suite()).unwrap();
        assert_eq!(picked.len(), 2, "{picked:?}");
        assert_eq!(picked[0].primary_size(), 1024);
        assert_eq!(picked[1].primary_size(), 64 << 20);
        let s = Selection::parse(&[], &[], &strings(&["1024"])).unwrap();
        let e = s.apply(&suite()).unwrap_err().to_string();
        assert!(
            e.contains("gives no size for bandwidth_triad, whose size is the bytes"),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_get_the_closest_ones() {
        let s = Selection::parse(&strings(&["gem"]), &[], &[]).unwrap();
        let e = s.check_kernel_names(&suite()).unwrap_err().to_string();
        assert!(
            e.contains("unknown kernel \"gem\" (did you mean \"gemm\"?)"),
            "{e}"
        );
        let s = Selection::parse(&strings(&["bandwith_triad"]), &[], &[]).unwrap();
        let e = s.check_kernel_names(&suite()).unwrap_err().to_string();
        assert!(e.contains("did you mean \"bandwidth_triad\"?"), "{e}");
        let s = Selection::parse(&strings(&["bandwidth", "gemm"]), &[], &[]).unwrap();
        assert!(s.check_kernel_names(&suite()).is_ok());
        let e = Selection::parse(&[], &strings(&["bf61"]), &[]).unwrap_err();
        assert!(e.to_string().contains("unknown dtype \"bf61\""), "{e}");
        let e = Selection::parse(&[], &strings(&["bf17"]), &[]).unwrap_err();
        assert!(e.to_string().contains("(did you mean \"bf16\"?)"), "{e}");
        assert_eq!(
            crate::util::did_you_mean("zzzzzz", ["gemm", "decode"].into_iter()),
            ""
        );
    }

    #[test]
    fn an_empty_dtype_filter_says_where_the_dtype_is() {
        let s = Selection::parse(&strings(&["bandwidth"]), &strings(&["f16"]), &[]).unwrap();
        assert!(s.apply(&suite()).unwrap().is_empty());
        let suites = [(Suite::Standard, suite())];
        let text = s.explain_empty("cpu", Suite::Standard, &suites);
        assert!(
            text.contains("f16 is measured by gemm in the standard suite"),
            "{text}"
        );
        assert!(text.contains("bandwidth runs in f64 here"), "{text}");
        let s = Selection::parse(&[], &strings(&["bf16"]), &[]).unwrap();
        let text = s.explain_empty("cpu", Suite::Standard, &suites);
        assert!(
            text.contains("no kernel on cpu measures bf16 (it measures f16, f32, f64)"),
            "{text}"
        );
    }
}
