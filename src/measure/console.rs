//! What `silirep measure` prints while and after measuring, and for `--list`. Every number
//! says what it is: sizes carry their unit and meaning (`m=n=k=2048`, `256 MiB per array`),
//! a partial decode says it is per layer and what the whole model implies, and the CI is
//! the report's own (the bootstrap interval of `silirep_stats::estimate`), so the console
//! and the report never disagree. `ok` means the CI target was met, nothing less.

use crate::util::format;
use silirep_core::KernelSpec;
use silirep_core::schema::{ErrorKind, Measurement, Settings};
use silirep_stats::{Observations, estimate};

/// The configuration's selectable size with its unit and meaning.
pub fn size_label(spec: &KernelSpec) -> String {
    match spec {
        KernelSpec::Gemm { m, n, k, .. } if m == n && n == k => format!("m=n=k={m}"),
        KernelSpec::Gemm { m, n, k, .. } => format!("m={m} n={n} k={k}"),
        KernelSpec::Bandwidth { array_bytes, .. } => {
            format!("{} per array", bytes_text(*array_bytes as f64))
        }
        KernelSpec::Attention {
            seq_len, causal, ..
        } => format!("seq {seq_len}{}", if *causal { " causal" } else { "" }),
        KernelSpec::Layer { batch, seq_len, .. } => format!("batch {batch} × seq {seq_len}"),
        KernelSpec::Decode {
            batch,
            layers,
            shape,
            context,
            ..
        } => {
            let stack = match shape.model_layers() {
                Some(model) if *layers < model => {
                    format!("batch {batch}, {layers} of {model} layers")
                }
                _ => format!("batch {batch}, {layers} layers"),
            };
            if *context > 0 {
                format!("{stack}, context {context}")
            } else {
                stack
            }
        }
        KernelSpec::IntensitySweep {
            fmas_per_element, ..
        } => format!("{fmas_per_element} FMA/element"),
        KernelSpec::Model { seq_len, .. } => format!("seq {seq_len}"),
        KernelSpec::PeerCopy {
            src_device,
            dst_device,
            bytes,
        } => format!(
            "{} GPU {src_device}→{dst_device}",
            bytes_text(*bytes as f64)
        ),
        KernelSpec::HostTransfer {
            memory,
            device,
            bytes,
            ..
        } => format!(
            "{} {} GPU {device}",
            bytes_text(*bytes as f64),
            memory.name()
        ),
        KernelSpec::Collective { bytes, devices, .. } => format!(
            "{} over GPUs {}",
            bytes_text(*bytes as f64),
            silirep_core::kernels::devices_label(devices)
        ),
        KernelSpec::NetworkTransfer {
            streams,
            message_bytes,
            peer,
            ..
        } => format!(
            "{} writes × {streams} stream{}{}",
            bytes_text(*message_bytes as f64),
            if *streams == 1 { "" } else { "s" },
            peer.as_ref()
                .map(|p| format!(" to {p}"))
                .unwrap_or_default()
        ),
        KernelSpec::NetworkRoundTrip { message_bytes } => {
            format!("{} message", bytes_text(*message_bytes as f64))
        }
    }
}

/// Bytes exactly where they are a whole number of binary units (`256 MiB`), else decimal
/// (`1.00 GB`), so `--sizes 1GB` is not shown as `954 MiB`.
fn bytes_text(bytes: f64) -> String {
    if bytes < u64::MAX as f64 && (bytes as u64).is_multiple_of(1 << 20) {
        format::bytes_binary(bytes as u64)
    } else {
        format::si(bytes, "B")
    }
}

/// The figure a user reads first for a kernel: B/s for bandwidth and transfers (for
/// collectives nccl-tests' algorithm and bus bandwidth), tokens/s for decode (per layer
/// where only part of the model ran), FLOP/s otherwise.
pub fn headline_rate(m: &Measurement) -> Option<String> {
    let median = silirep_core::median::median(&m.samples_s)?;
    let (unit, work) = m.spec.rate_work()?;
    let rate = work / median;
    Some(match (&m.spec, unit) {
        (silirep_core::KernelSpec::Collective { .. }, _) => format!(
            "{} algbw, {} busbw",
            format::si(rate, "B/s"),
            format::si(m.spec.bus_bytes()? / median, "B/s")
        ),
        (silirep_core::KernelSpec::Decode { .. }, _) => format::decode_rate(&m.spec, rate),
        (_, silirep_core::RateUnit::TokenPerS) => format!("{} tokens/s", format::sig3(rate)),
        (_, unit) => format::si(rate, unit.symbol()),
    })
}

/// Relative half-width of the 95% CI of the median as the report computes it (bootstrap),
/// `None` below two samples.
pub fn report_ci(samples: &[f64]) -> Option<f64> {
    estimate(&Observations::Samples(samples.to_vec()))
        .ok()?
        .relative_half_width()
}

/// `ok` only when the CI target was met; otherwise why sampling stopped and by how much the
/// CI missed, or the failure.
pub fn status(m: &Measurement, target_relative_ci: f64) -> String {
    if let Some(e) = &m.error {
        return format!("failed: {}", error_kind_text(e.kind));
    }
    let stop_reason = m.details.get("stop_reason").map(String::as_str);
    let reason = match stop_reason {
        Some("time_cap") => "time cap, ",
        Some("sample_cap") => "sample cap, ",
        _ => "",
    };
    match report_ci(&m.samples_s) {
        Some(ci) if ci <= target_relative_ci => "ok".into(),
        // The harness stops on the cheaper order-statistic interval; in the rare case it met
        // the target while the report's bootstrap interval did not, say both.
        Some(ci) if stop_reason == Some("converged") => format!(
            "CI ±{} > target {} (the stopping rule's order-statistic CI met it)",
            format::percent(ci),
            format::percent(target_relative_ci)
        ),
        Some(ci) => format!(
            "{reason}CI ±{} > target {}",
            format::percent(ci),
            format::percent(target_relative_ci)
        ),
        None => format!("{reason}no CI (n={})", m.samples_s.len()),
    }
}

fn error_kind_text(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::OutOfMemory => "out of memory",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::VerificationFailed => "wrong output",
        ErrorKind::Interrupted => "interrupted",
        ErrorKind::Backend => "backend error",
    }
}

pub fn describe_spec(spec: &KernelSpec) -> String {
    format!(
        "{} {} {}",
        spec.name(),
        spec.precision_label(),
        size_label(spec)
    )
}

/// The line printed as each configuration finishes.
pub fn summary_line(m: &Measurement, target_relative_ci: f64) -> String {
    match (&m.error, headline_rate(m)) {
        (Some(e), _) => format!(
            "  {}: failed: {} — {}",
            describe_spec(&m.spec),
            error_kind_text(e.kind),
            e.message
        ),
        (None, Some(rate)) => format!(
            "  {}: {rate} (median {}, 95% CI {}, n={}) {}",
            describe_spec(&m.spec),
            format::duration(silirep_core::median::median(&m.samples_s).unwrap_or(f64::NAN)),
            ci_text(&m.samples_s),
            m.samples_s.len(),
            status(m, target_relative_ci)
        ),
        (None, None) => format!("  {}: no samples", describe_spec(&m.spec)),
    }
}

fn ci_text(samples: &[f64]) -> String {
    report_ci(samples)
        .map(|r| format!("±{}", format::percent(r)))
        .unwrap_or_else(|| "—".into())
}

/// The table printed at the end of a run.
pub fn summary_table(measurements: &[Measurement], target_relative_ci: f64) -> String {
    let mut rows = vec![[
        "kernel".to_string(),
        "dtype".into(),
        "size".into(),
        "median".into(),
        "rate".into(),
        "95% CI".into(),
        "n".into(),
        "status".into(),
    ]];
    for m in measurements {
        rows.push([
            m.spec.name(),
            m.spec.precision_label(),
            size_label(&m.spec),
            silirep_core::median::median(&m.samples_s)
                .map(format::duration)
                .unwrap_or_else(|| "—".into()),
            headline_rate(m).unwrap_or_else(|| "—".into()),
            ci_text(&m.samples_s),
            m.samples_s.len().to_string(),
            status(m, target_relative_ci),
        ]);
    }
    aligned(&rows)
}

/// A closing line when some configurations did not reach the CI target (or failed), so a
/// run that is mostly time caps is not read as a clean one.
pub fn shortfall_note(measurements: &[Measurement], target_relative_ci: f64) -> Option<String> {
    let failed = measurements.iter().filter(|m| m.error.is_some()).count();
    let short = measurements
        .iter()
        .filter(|m| m.error.is_none() && status(m, target_relative_ci) != "ok")
        .count();
    if failed + short == 0 {
        return None;
    }
    let mut parts = Vec::new();
    if short > 0 {
        parts.push(format!(
            "{short} of {} configurations stopped before their 95% CI was within {} \
             (raise --max-time to tighten them)",
            measurements.len(),
            format::percent(target_relative_ci)
        ));
    }
    if failed > 0 {
        parts.push(format!(
            "{failed} failed (the reason is in the result file)"
        ));
    }
    Some(format!("note: {}", parts.join("; ")))
}

/// Columns padded to their widest cell (in characters, for `×` and `µ`); the last one is not.
fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `--list`: the configurations with their sizes, work and memory, and how long the run may
/// take under `settings`.
pub fn configuration_list(
    backend: &str,
    specs: &[KernelSpec],
    settings: &Settings,
    selection: &str,
) -> String {
    let mut rows = vec![[
        "kernel".to_string(),
        "dtype".into(),
        "size".into(),
        "work per iteration".into(),
        "operands in memory".into(),
    ]];
    for spec in specs {
        let work = match (spec.flops(), spec.bytes()) {
            (Some(f), Some(b)) if f > 0.0 => {
                format!("{}, {} moved", format::si(f, "FLOP"), format::si(b, "B"))
            }
            (_, Some(b)) => format!("{} moved", format::si(b, "B")),
            (Some(f), None) => format::si(f, "FLOP"),
            (None, None) => "—".into(),
        };
        rows.push([
            spec.name(),
            spec.precision_label(),
            size_label(spec),
            work,
            spec.footprint_bytes()
                .map(|b| {
                    if b < u64::MAX as f64 {
                        format::bytes_binary(b as u64)
                    } else {
                        format::si(b, "B")
                    }
                })
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    let per_config_s = settings.warmup_time_s + settings.max_time_per_config_s;
    format!(
        "{} configuration{} of the {} suite on {backend} (selection: {selection}):\n{}\
         estimated duration: about {} of warm-up and timing ({} per configuration: {} \
         untimed warm-up, then up to {} timed until the 95% CI of the median is within {}); \
         set-up and verification come on top, and a configuration whose {} timed iterations \
         outlast the cap takes longer\n",
        specs.len(),
        if specs.len() == 1 { "" } else { "s" },
        settings.suite,
        aligned(&rows),
        minutes(per_config_s * specs.len() as f64),
        minutes(per_config_s),
        minutes(settings.warmup_time_s),
        minutes(settings.max_time_per_config_s),
        format::percent(settings.target_relative_ci),
        settings.min_samples
    )
}

/// `2 min 3 s`, `0.5 s`.
fn minutes(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{} s", format::sig3(seconds).trim_end_matches(".00"));
    }
    let whole = seconds.round() as u64;
    match (whole / 3600, whole % 3600 / 60, whole % 60) {
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::{MeasurementError, Verification};
    use silirep_core::{BandwidthOp, Dtype, LayerShape};
    use std::collections::BTreeMap;

    fn measured(spec: KernelSpec, samples: Vec<f64>, stop_reason: &str) -> Measurement {
        Measurement {
            flops: spec.flops(),
            bytes: spec.bytes(),
            spec,
            samples_s: samples,
            warmup_iterations: 1,
            verification: Verification::not_run("test"),
            error: None,
            details: BTreeMap::from([("stop_reason".to_string(), stop_reason.to_string())]),
            topology: None,
        }
    }

    /// A collective shows nccl-tests' two rates: 1 GiB all-reduce over 2 GPUs in 10 ms is
    /// 107 GB/s of algorithm bandwidth and, × 2(n−1)/n = 1, the same bus bandwidth; over 4
    /// GPUs the bus figure is 1.5× higher.
    #[test]
    fn collectives_show_algorithm_and_bus_bandwidth() {
        let spec = |devices: Vec<u32>| KernelSpec::Collective {
            op: silirep_core::CollectiveOp::AllReduce,
            bytes: 1 << 30,
            dtype: Dtype::F32,
            devices,
        };
        let two = measured(spec(vec![0, 1]), vec![0.01; 5], "converged");
        assert_eq!(
            headline_rate(&two).unwrap(),
            "107 GB/s algbw, 107 GB/s busbw"
        );
        let four = measured(spec(vec![0, 1, 2, 3]), vec![0.01; 5], "converged");
        assert_eq!(
            headline_rate(&four).unwrap(),
            "107 GB/s algbw, 161 GB/s busbw"
        );
        assert_eq!(size_label(&four.spec), "1.00 GiB over GPUs 0,1,2,3");
    }

    fn gemm() -> KernelSpec {
        KernelSpec::Gemm {
            m: 2048,
            n: 2048,
            k: 2048,
            dtype: Dtype::F32,
        }
    }

    fn decode() -> KernelSpec {
        KernelSpec::Decode {
            batch: 1,
            layers: 1,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F32,
        }
    }

    #[test]
    fn sizes_carry_their_unit_and_meaning() {
        assert_eq!(size_label(&gemm()), "m=n=k=2048");
        let triad = |array_bytes| KernelSpec::Bandwidth {
            op: BandwidthOp::Triad,
            array_bytes,
            dtype: Dtype::F64,
        };
        assert_eq!(size_label(&triad(256 << 20)), "256 MiB per array");
        assert_eq!(size_label(&triad(1_000_000_000)), "1.00 GB per array");
        assert_eq!(size_label(&decode()), "batch 1, 1 of 32 layers");
        let attention = |causal| KernelSpec::Attention {
            implementation: silirep_core::AttentionImpl::Fused,
            batch: 1,
            heads: 32,
            seq_len: 4096,
            head_dim: 128,
            dtype: Dtype::Bf16,
            causal,
        };
        assert_eq!(size_label(&attention(false)), "seq 4096");
        assert_eq!(size_label(&attention(true)), "seq 4096 causal");
    }

    #[test]
    fn ok_only_when_the_report_ci_meets_the_target() {
        let steady = measured(gemm(), vec![1e-3; 20], "converged");
        assert_eq!(status(&steady, 0.01), "ok");
        // Alternating 1 ms / 1.6 ms: the median's interval is tens of percent wide.
        let noisy: Vec<f64> = (0..20).map(|i| 1e-3 + 6e-4 * (i % 2) as f64).collect();
        let capped = measured(gemm(), noisy.clone(), "time_cap");
        let ci = report_ci(&noisy).unwrap();
        assert!(ci > 0.01, "{ci}");
        assert_eq!(
            status(&capped, 0.01),
            format!("time cap, CI ±{} > target 1%", format::percent(ci))
        );
        let converged = measured(gemm(), noisy, "converged");
        assert!(
            status(&converged, 0.01).ends_with("(the stopping rule's order-statistic CI met it)")
        );
        let one = measured(gemm(), vec![1e-3], "time_cap");
        assert_eq!(status(&one, 0.01), "time cap, no CI (n=1)");
        let mut failed = measured(gemm(), vec![], "");
        failed.error = Some(MeasurementError {
            kind: ErrorKind::OutOfMemory,
            message: "too big".into(),
        });
        assert_eq!(status(&failed, 0.01), "failed: out of memory");
    }

    #[test]
    fn console_ci_is_the_report_ci() {
        // The report's rate interval for these samples, through the report's own code.
        let samples: Vec<f64> = (0..40)
            .map(|i| 1e-3 * (1.0 + 0.01 * (i % 7) as f64))
            .collect();
        let e = estimate(&Observations::Samples(samples.clone())).unwrap();
        let expected = (e.center - e.lower.unwrap()).max(e.upper.unwrap() - e.center) / e.center;
        assert_eq!(report_ci(&samples), Some(expected));
        let measurements = [measured(gemm(), samples, "converged")];
        let table = summary_table(&measurements, 0.5);
        assert!(
            table.contains(&format!("±{}", format::percent(expected))),
            "{table}"
        );
        assert_eq!(shortfall_note(&measurements, 0.5), None);
        assert_eq!(
            shortfall_note(&measurements, 1e-9).as_deref(),
            Some(
                "note: 1 of 1 configurations stopped before their 95% CI was within \
                 1.00e-7% (raise --max-time to tighten them)"
            )
        );
    }

    #[test]
    fn a_one_layer_decode_is_labelled_per_layer_with_the_whole_model_rate() {
        let m = measured(decode(), vec![0.05; 20], "converged");
        let rate = headline_rate(&m).unwrap();
        assert_eq!(
            rate,
            "20.0 tokens/s per layer (0.625 tokens/s for all 32 layers)"
        );
        let table = summary_table(&[m], 0.01);
        assert!(table.contains("batch 1, 1 of 32 layers"), "{table}");
        assert!(table.contains("tokens/s per layer"), "{table}");
    }

    #[test]
    fn the_list_estimates_the_duration() {
        let settings = Settings {
            suite: "standard".into(),
            warmup_time_s: 1.0,
            max_time_per_config_s: 2.0,
            target_relative_ci: 0.01,
            ..Settings::default()
        };
        let text = configuration_list("cpu", &[gemm(), decode()], &settings, "everything");
        assert!(
            text.starts_with("2 configurations of the standard suite on cpu"),
            "{text}"
        );
        assert!(text.contains("m=n=k=2048"), "{text}");
        assert!(text.contains("17.2 GFLOP"), "{text}");
        assert!(
            text.contains("estimated duration: about 6 s of warm-up and timing (3 s per"),
            "{text}"
        );
        assert_eq!(minutes(123.0), "2 min 3 s");
        assert_eq!(minutes(0.5), "0.500 s");
    }
}
