//! pytorch_mps_benchmarks.json, mlx_benchmarks.json, memory_benchmarks.json:
//! {"framework": ..., "benchmarks": {"gemm": [...], "attention": [...], ...}}

use super::*;

pub(super) struct FrameworkBenchmarks;

impl Importer for FrameworkBenchmarks {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark benchmark lists"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("framework").is_some_and(|f| f.is_string())
            && file.doc.get("benchmarks").is_some_and(|b| b.is_object())
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        let builder = RecordBuilder {
            file,
            framework: root.get("framework")?.str()?.to_string(),
        };
        for (list_name, list) in root.get("benchmarks")?.entries()? {
            match list_name {
                "max_allocation" => {} // an allocation probe, not a timing
                "gemm" | "attention" | "transformer_block" | "bandwidth" => {
                    for item in list.array()? {
                        import_benchmark_item(&builder, list_name, &item, out)?;
                    }
                }
                name if name.starts_with("mistral") => {
                    for item in list.array()? {
                        import_model_item(&builder, &item, out)?;
                    }
                }
                other => out.warn(
                    file,
                    list.path(),
                    format!("unknown benchmark list {other:?}; skipped"),
                ),
            }
        }
        Ok(())
    }
}

pub(super) fn extra_error(item: &Node) -> Option<String> {
    let error = item.opt("extra")?.opt("error")?;
    let text = error.value.as_str().map(str::to_string)?;
    // The first line says what went wrong; the rest is a stack of HTTP details.
    Some(text.lines().next().unwrap_or("").trim().to_string())
}

pub(super) fn import_benchmark_item(
    builder: &RecordBuilder,
    list_name: &str,
    item: &Node,
    out: &mut Imported,
) -> Result<(), ImportError> {
    let extra = item.opt("extra");
    let extra_u64 = |key: &str| -> Result<Option<u64>, ImportError> {
        Ok(extra
            .as_ref()
            .and_then(|e| e.opt(key))
            .map(|n| n.u64())
            .transpose()?)
    };
    let extra_f64 = |key: &str| -> Result<Option<f64>, ImportError> {
        Ok(extra
            .as_ref()
            .and_then(|e| e.opt(key))
            .map(|n| n.f64_or_missing())
            .transpose()?
            .flatten())
    };
    let source_error = extra_error(item);
    let mut notes = Vec::new();
    let spec = match benchmark_spec(list_name, item, &extra_u64, &mut notes) {
        Ok(Some(spec)) => spec,
        Ok(None) => {
            out.warn(
                builder.file,
                item.path(),
                "unknown bandwidth kernel name; skipped",
            );
            return Ok(());
        }
        // A failed run often leaves its parameters empty: the failure is still reported.
        Err(_) if source_error.is_some() => {
            let name = item
                .opt("name")
                .and_then(|n| n.str().ok().map(str::to_string))
                .unwrap_or_else(|| list_name.to_string());
            out.warn(
                builder.file,
                item.path(),
                format!(
                    "{name}: the source records a failure: {}",
                    source_error.unwrap_or_default()
                ),
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let time_ms = item.get("time_ms")?.f64_or_missing()?;
    let timing = timing_from_ms(time_ms, extra_f64("std_ms")?, extra_u64("iterations")?);
    let mut record = builder.record(spec, timing, item.path());
    record.notes = notes;
    if let Some(error) = source_error {
        record.error = Some(error);
        record.timing = None;
    } else if record.timing.is_none() {
        record.error = Some(no_time_reason("time_ms", time_ms));
    }
    let tflops = item
        .opt("tflops")
        .map(|n| n.f64_or_missing())
        .transpose()?
        .flatten();
    let gbps = item
        .opt("bandwidth_gbs")
        .map(|n| n.f64_or_missing())
        .transpose()?
        .flatten();
    if let Some(t) = tflops.filter(|t| *t > 0.0) {
        record.reported.insert("tflops".into(), t);
    }
    if let Some(b) = gbps.filter(|b| *b > 0.0) {
        record.reported.insert("bandwidth_gbs".into(), b);
    }
    if list_name == "bandwidth" {
        let ours = record.bytes_per_s().map(|b| b / 1e9);
        check_rate(out, builder.file, &record, "bandwidth_gbs", gbps, ours);
    } else {
        let ours = record.flop_per_s().map(|f| f / 1e12);
        check_rate(out, builder.file, &record, "tflops", tflops, ours);
    }
    out.records.push(record);
    Ok(())
}

type ExtraU64<'x> = dyn Fn(&str) -> Result<Option<u64>, ImportError> + 'x;

/// The configuration a benchmark-list item describes; `Ok(None)` for an unknown bandwidth
/// kernel name.
pub(super) fn benchmark_spec(
    list_name: &str,
    item: &Node,
    extra_u64: &ExtraU64,
    notes: &mut Vec<String>,
) -> Result<Option<KernelSpec>, ImportError> {
    let required = |key: &str| -> Result<u64, ImportError> {
        extra_u64(key)?.ok_or_else(|| ImportError::Invalid {
            path: format!("{}.extra.{key}", item.path()),
            message: "expected a non-negative integer, found nothing (missing)".into(),
        })
    };
    Ok(Some(match list_name {
        "gemm" => {
            let size = item.get("size")?;
            let (m, n) = parse_dims(&size)?;
            // "512x512" names a square problem; the inner dimension equals the others.
            if m != n {
                notes.push("inner dimension k assumed equal to n".to_string());
            }
            KernelSpec::Gemm {
                m,
                n,
                k: n,
                dtype: dtype_at(&item.get("dtype")?)?,
            }
        }
        "attention" => KernelSpec::Attention {
            implementation: AttentionImpl::Unspecified,
            batch: required("batch_size")?,
            heads: required("num_heads")?,
            seq_len: required("seq_len")?,
            head_dim: required("head_dim")?,
            dtype: dtype_at(&item.get("dtype")?)?,
            causal: false,
        },
        "transformer_block" => {
            let hidden = extra_u64("hidden_size")?.unwrap_or(LAYER_SHAPE.hidden);
            let heads = extra_u64("num_heads")?.unwrap_or(LAYER_SHAPE.heads);
            let intermediate = extra_u64("intermediate_size")?.unwrap_or(LAYER_SHAPE.intermediate);
            let seq_len = required("seq_len")?;
            notes.push("batch 1 and full multi-head K/V projections assumed".to_string());
            KernelSpec::Layer {
                pass: Pass::Forward,
                part: LayerPart::Full,
                batch: 1,
                seq_len,
                shape: LayerShape {
                    hidden,
                    heads,
                    kv_heads: heads,
                    head_dim: hidden / heads.max(1),
                    intermediate,
                },
                dtype: dtype_at(&item.get("dtype")?)?,
            }
        }
        "bandwidth" => {
            let name = item.get("name")?;
            let op = match name.str()? {
                "sequential_read" | "read" => BandwidthOp::Read,
                "sequential_write" | "write" => BandwidthOp::Write,
                "copy" => BandwidthOp::Copy,
                "triad" => BandwidthOp::Triad,
                _ => return Ok(None),
            };
            let size_gib = item.get("size_gb")?.f64()?;
            // The published GB/s equal size_gb·2³⁰·arrays/time: size_gb is in GiB.
            notes.push("buffer size read as GiB; element type float32 assumed".to_string());
            KernelSpec::Bandwidth {
                op,
                array_bytes: (size_gib * GIB).round() as u64,
                dtype: Dtype::F32,
            }
        }
        _ => unreachable!("caller matches the list names"),
    }))
}

/// `"512x512"` → (512, 512).
pub(super) fn parse_dims(node: &Node) -> Result<(u64, u64), ImportError> {
    let text = node.str()?;
    let mut parts = text.split(['x', 'X', '×']).map(|p| p.trim().parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(m)), Some(Ok(n)), None) => Ok((m, n)),
        _ => Err(ImportError::Invalid {
            path: node.path().to_string(),
            message: format!("expected a size like \"512x512\", found {text:?}"),
        }),
    }
}

/// `mistral_7b` entries: a whole-model forward pass over `seq_len` prompt tokens.
pub(super) fn import_model_item(
    builder: &RecordBuilder,
    item: &Node,
    out: &mut Imported,
) -> Result<(), ImportError> {
    let extra = item.opt("extra");
    let get = |key: &str| extra.as_ref().and_then(|e| e.opt(key));
    let model = get("model_name")
        .map(|n| n.str().map(str::to_string))
        .transpose()?
        .unwrap_or_else(|| {
            item.get("name")
                .and_then(|n| Ok(n.str()?.to_string()))
                .unwrap_or_default()
        });
    let seq_len = get("seq_len").map(|n| n.u64()).transpose()?.unwrap_or(0);
    let batch = get("batch_size").map(|n| n.u64()).transpose()?.unwrap_or(1);
    let params = get("param_count").map(|n| n.u64()).transpose()?;
    let precision = item.get("dtype")?.str()?.to_string();
    let spec = KernelSpec::Model {
        model,
        phase: ModelPhase::Prefill,
        precision,
        batch,
        seq_len,
        tokens: batch * seq_len,
        params,
    };
    let time_ms = item.get("time_ms")?.f64_or_missing()?;
    let mut record = builder.record(spec, timing_from_ms(time_ms, None, None), item.path());
    if let Some(error) = extra_error(item) {
        record.error = Some(error);
        record.timing = None;
    } else if record.timing.is_none() {
        record.error = Some(no_time_reason("time_ms", time_ms));
    } else if seq_len == 0 {
        record.error = Some("no sequence length recorded (seq_len is 0)".into());
        record.timing = None;
    }
    if record.timing.is_some() {
        let reported = get("tokens_per_sec")
            .map(|n| n.f64_or_missing())
            .transpose()?
            .flatten();
        check_rate(
            out,
            builder.file,
            &record,
            "tokens_per_sec",
            reported,
            record.tokens_per_s(),
        );
    }
    out.records.push(record);
    Ok(())
}
