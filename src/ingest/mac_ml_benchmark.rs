//! Files published by the mac-ml-benchmark project (PyTorch-MPS and MLX on Apple Silicon).
//!
//! The project wrote one JSON shape per script, so there is one importer per shape. The
//! files state little about *what* was run (layer shapes, dtypes of bandwidth buffers), so
//! every assumption made here is (a) written into the record's notes and (b) checked against
//! the rate the file itself reports: if our FLOP/byte count and the file's TFLOP/s or GB/s
//! disagree by more than [`RATE_TOLERANCE`], a warning says so.

use super::node::Node;
use super::record::{MachineKey, Record, Timing};
use super::{FileView, ImportError, Imported, Importer, MachineInfo};
use crate::util::slug;
use silirep_core::{
    AttentionImpl, BandwidthOp, Dtype, KernelSpec, LayerPart, LayerShape, ModelPhase, Pass,
};
use std::collections::BTreeMap;
use std::path::Path;

/// Relative difference allowed between a rate the file reports and the one we derive.
const RATE_TOLERANCE: f64 = 0.02;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The layer the project benchmarks: Mistral-7B dimensions with full multi-head K/V
/// projections (32 KV heads). The published TFLOP/s match this count, not Mistral's GQA.
const LAYER_SHAPE: LayerShape = LayerShape {
    kv_heads: 32,
    ..LayerShape::MISTRAL_7B
};

pub fn importers() -> Vec<Box<dyn Importer>> {
    vec![
        Box::new(SystemInfo),
        Box::new(FrameworkBenchmarks),
        Box::new(GemmComparison),
        Box::new(LayerBenchmark),
        Box::new(FrameworkComparison),
        Box::new(FineTuning),
        Box::new(MfuSummary),
        Box::new(TrafficCapture),
    ]
}

/// The machine a folder's files belong to: from its `system_info.json` when it has a
/// readable one, else the folder's name.
pub fn folder_machine(folder: &Path, root: &Path) -> MachineKey {
    let info = std::fs::read_to_string(folder.join("system_info.json"))
        .ok()
        .and_then(|text| super::json_text::parse(&text).ok())
        .and_then(|parsed| system_info_key(&parsed.value));
    if let Some(key) = info {
        return key;
    }
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && folder != root)
        .unwrap_or_else(|| {
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "results".into())
        });
    MachineKey {
        id: slug(&name),
        label: name,
    }
}

fn system_info_key(doc: &serde_json::Value) -> Option<MachineKey> {
    let chip = doc.get("chip")?;
    let brand = chip.get("brand_string")?.as_str()?.trim().to_string();
    let model = chip
        .get("model_identifier")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    Some(MachineKey {
        id: slug(&format!("{brand} {model}")),
        label: brand,
    })
}

struct RecordBuilder<'f, 'a> {
    file: &'f FileView<'a>,
    framework: String,
}

impl RecordBuilder<'_, '_> {
    fn record(&self, spec: KernelSpec, timing: Option<Timing>, json_path: &str) -> Record {
        Record {
            machine: self.file.folder_machine.clone(),
            framework: self.framework.clone(),
            spec,
            timing,
            verification: "not_reported".into(),
            error: None,
            run_id: None,
            source: self.file.provenance(json_path),
            notes: Vec::new(),
            clock: None,
            reported: BTreeMap::new(),
        }
    }
}

/// Compares a rate the file reports with ours; warns when they disagree.
fn check_rate(
    out: &mut Imported,
    file: &FileView,
    record: &Record,
    reported_name: &str,
    reported: Option<f64>,
    ours: Option<f64>,
) {
    let (Some(reported), Some(ours)) = (reported, ours) else {
        return;
    };
    if reported <= 0.0 || ours <= 0.0 {
        return;
    }
    let diff = (reported - ours).abs() / ours;
    if diff > RATE_TOLERANCE {
        out.warn(
            file,
            &record.source.json_path,
            format!(
                "the file reports {reported_name} = {reported:.4}, silirep's formula gives {ours:.4} \
                 ({:+.1}%): the source counts work differently; silirep's count is used",
                (reported / ours - 1.0) * 100.0
            ),
        );
    }
}

/// `time_ms` (+ `extra.std_ms`, `extra.iterations`) as a [`Timing`]: a mean with spread when
/// the file has it, else one value. Zero or missing times mean "not measured".
fn timing_from_ms(mean_ms: Option<f64>, std_ms: Option<f64>, n: Option<u64>) -> Option<Timing> {
    let mean_s = mean_ms.filter(|t| *t > 0.0 && t.is_finite())? / 1e3;
    match (std_ms, n) {
        (Some(std_ms), Some(n)) if n >= 2 && std_ms.is_finite() && std_ms >= 0.0 => {
            Some(Timing::Summary {
                mean_s,
                std_s: std_ms / 1e3,
                n,
            })
        }
        _ => Some(Timing::Single(mean_s)),
    }
}

/// Why a published time cannot be used, in the words that fit what the file holds.
fn no_time_reason(field: &str, value: Option<f64>) -> String {
    match value {
        None => format!("no time recorded ({field} is missing)"),
        Some(v) if v < 0.0 => format!("invalid time: {field} is negative ({v})"),
        Some(0.0) => format!("no time recorded ({field} is 0)"),
        Some(v) => format!("invalid time: {field} is {v}"),
    }
}

fn dtype_at(node: &Node) -> Result<Dtype, ImportError> {
    let text = node.str()?;
    Dtype::parse(text).ok_or_else(|| ImportError::Invalid {
        path: node.path().to_string(),
        message: format!("expected a dtype such as \"float16\", found {text:?}"),
    })
}

// ---------------------------------------------------------------------------------------
// system_info.json

struct SystemInfo;

impl Importer for SystemInfo {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark system info"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc
            .get("chip")
            .is_some_and(|c| c.get("brand_string").is_some())
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        let chip = root.get("chip")?;
        let brand = chip.get("brand_string")?.str()?.trim().to_string();
        let key = system_info_key(file.doc).ok_or_else(|| chip.error("a chip description"))?;
        let gpu = root.opt("gpu");
        let memory = root.opt("memory");
        let software = root.opt("software");
        let info = MachineInfo {
            label: brand.clone(),
            cpu_model: Some(brand.clone()),
            cpu_cores: chip.opt("core_count").map(|n| n.u64()).transpose()?,
            memory_bytes: memory
                .and_then(|m| m.opt("total_bytes"))
                .map(|n| n.u64())
                .transpose()?,
            accelerator: gpu
                .as_ref()
                .and_then(|g| g.opt("gpu_name"))
                .map(|n| n.str().map(str::to_string))
                .transpose()?,
            accelerator_compute_units: gpu
                .and_then(|g| g.opt("gpu_cores_estimate"))
                .map(|n| n.u64())
                .transpose()?,
            os: software
                .and_then(|s| s.opt("macos_version"))
                .map(|v| v.str().map(|v| format!("macOS {v}")))
                .transpose()?,
            described_by: vec![file.rel_path.to_string()],
        };
        out.machines.push((key, info));
        out.not_imported = Some("machine description (no measurements)".into());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// pytorch_mps_benchmarks.json, mlx_benchmarks.json, memory_benchmarks.json:
// {"framework": ..., "benchmarks": {"gemm": [...], "attention": [...], ...}}

struct FrameworkBenchmarks;

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

fn extra_error(item: &Node) -> Option<String> {
    let error = item.opt("extra")?.opt("error")?;
    let text = error.value.as_str().map(str::to_string)?;
    // The first line says what went wrong; the rest is a stack of HTTP details.
    Some(text.lines().next().unwrap_or("").trim().to_string())
}

fn import_benchmark_item(
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
fn benchmark_spec(
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
fn parse_dims(node: &Node) -> Result<(u64, u64), ImportError> {
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
fn import_model_item(
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

// ---------------------------------------------------------------------------------------
// pytorch_vs_mlx_detailed.json: {"pytorch_mps": [{size, dtype, avg_ms, std_ms?, samples?}]}

struct GemmComparison;

impl Importer for GemmComparison {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark GEMM comparison"
    }

    fn recognises(&self, file: &FileView) -> bool {
        let Some(map) = file.doc.as_object() else {
            return false;
        };
        !map.is_empty()
            && map.values().all(|v| {
                v.as_array().is_some_and(|items| {
                    items
                        .iter()
                        .all(|i| i.get("avg_ms").is_some() && i.get("size").is_some())
                })
            })
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        for (framework, list) in file.root().entries()? {
            let builder = RecordBuilder {
                file,
                framework: framework.to_string(),
            };
            for item in list.array()? {
                let size = item.get("size")?.u64()?;
                let spec = KernelSpec::Gemm {
                    m: size,
                    n: size,
                    k: size,
                    dtype: dtype_at(&item.get("dtype")?)?,
                };
                let std_ms = item
                    .opt("std_ms")
                    .map(|n| n.f64_or_missing())
                    .transpose()?
                    .flatten();
                // Here `samples` is a count of iterations, not a list.
                let n = item.opt("samples").map(|n| n.u64()).transpose()?;
                let avg_ms = item.get("avg_ms")?.f64_or_missing()?;
                let timing = timing_from_ms(avg_ms, std_ms, n);
                let mut record = builder.record(spec, timing, item.path());
                if record.timing.is_none() {
                    record.error = Some(no_time_reason("avg_ms", avg_ms));
                }
                let tflops = item
                    .opt("tflops")
                    .map(|n| n.f64_or_missing())
                    .transpose()?
                    .flatten();
                if let Some(t) = tflops {
                    record.reported.insert("tflops".into(), t);
                }
                let ours = record.flop_per_s().map(|f| f / 1e12);
                check_rate(out, file, &record, "tflops", tflops, ours);
                out.records.push(record);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// layer_benchmark_float16.json: {"pytorch_mps": {"256": {"full_layer_ms": ..., ...}}}

struct LayerBenchmark;

impl Importer for LayerBenchmark {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark layer benchmark"
    }

    fn recognises(&self, file: &FileView) -> bool {
        let Some(map) = file.doc.as_object() else {
            return false;
        };
        !map.is_empty()
            && map.values().all(|v| {
                v.as_object().is_some_and(|per_seq| {
                    !per_seq.is_empty()
                        && per_seq.iter().all(|(seq, m)| {
                            seq.parse::<u64>().is_ok() && m.get("full_layer_ms").is_some()
                        })
                })
            })
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        // The file name carries the precision (layer_benchmark_float16.json).
        let dtype = ["float16", "bfloat16", "float32"]
            .into_iter()
            .find(|d| file.file_name.contains(d))
            .and_then(Dtype::parse)
            .unwrap_or(Dtype::F16);
        let parts: [(&str, Pass, LayerPart, Option<&str>); 6] = [
            ("full_layer_ms", Pass::Forward, LayerPart::Full, None),
            ("backward_ms", Pass::Backward, LayerPart::Full, None),
            (
                "attention_ms",
                Pass::Forward,
                LayerPart::Attention,
                Some("attention_tflops"),
            ),
            (
                "attention_backward_ms",
                Pass::Backward,
                LayerPart::Attention,
                None,
            ),
            ("ffn_ms", Pass::Forward, LayerPart::Ffn, Some("ffn_tflops")),
            ("ffn_backward_ms", Pass::Backward, LayerPart::Ffn, None),
        ];
        for (framework, per_seq) in file.root().entries()? {
            let builder = RecordBuilder {
                file,
                framework: framework.to_string(),
            };
            for (seq, timings) in per_seq.entries()? {
                let seq_len: u64 = seq
                    .parse()
                    .map_err(|_| timings.error("a sequence-length key"))?;
                for (key, pass, part, tflops_key) in parts {
                    let Some(node) = timings.opt(key) else {
                        continue;
                    };
                    let spec = KernelSpec::Layer {
                        pass,
                        part,
                        batch: 1,
                        seq_len,
                        shape: LAYER_SHAPE,
                        dtype,
                    };
                    let time_ms = node.f64_or_missing()?;
                    let timing = timing_from_ms(time_ms, None, None);
                    let mut record = builder.record(spec, timing, node.path());
                    record.notes.push(
                        "layer shape not stated by the file: Mistral-7B dimensions with 32 KV \
                         heads, batch 1 assumed (checked against its TFLOP/s where given)"
                            .into(),
                    );
                    if record.timing.is_none() {
                        record.error = Some(no_time_reason("the time", time_ms));
                    }
                    if let Some(tkey) = tflops_key {
                        let reported = timings
                            .opt(tkey)
                            .map(|n| n.f64_or_missing())
                            .transpose()?
                            .flatten();
                        if let Some(t) = reported {
                            record.reported.insert("tflops".into(), t);
                        }
                        let ours = record.flop_per_s().map(|f| f / 1e12);
                        check_layer_rate(out, file, &record, reported, ours);
                    }
                    out.records.push(record);
                }
            }
        }
        Ok(())
    }
}

/// The file rounds its times to 10 µs, so short blocks disagree with their own TFLOP/s by a
/// few percent; only a gross mismatch means the assumed shape is wrong.
fn check_layer_rate(
    out: &mut Imported,
    file: &FileView,
    record: &Record,
    reported: Option<f64>,
    ours: Option<f64>,
) {
    if let (Some(r), Some(o)) = (reported, ours)
        && o > 0.0
        && ((r - o).abs() / o) > 0.1
    {
        out.warn(
            file,
            &record.source.json_path,
            format!(
                "the file reports {r:.2} TFLOP/s, the assumed layer shape gives {o:.2}: \
                 the shape assumption may be wrong for this record"
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------
// framework_comparison.json: {"hardware": {...}, "frameworks": {"mlx": {...tokens_per_sec}}}

struct FrameworkComparison;

impl Importer for FrameworkComparison {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark framework comparison"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("frameworks").is_some_and(|f| f.is_object())
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        if let Some(chip) = root.opt("hardware").and_then(|h| h.opt("chip")) {
            let chip = chip.str()?;
            if chip != file.folder_machine.label {
                out.warn(
                    file,
                    "$.hardware.chip",
                    format!(
                        "names {chip:?} but the folder's machine is {:?}; the folder's is used",
                        file.folder_machine.label
                    ),
                );
            }
        }
        for (framework, entry) in root.get("frameworks")?.entries()? {
            let builder = RecordBuilder {
                file,
                framework: framework.to_string(),
            };
            let model = entry.get("model")?.str()?.to_string();
            let precision = entry.get("precision")?.str()?.to_string();
            for (key, phase) in [
                ("inference_tokens_per_sec", ModelPhase::Decode),
                ("training_tokens_per_sec", ModelPhase::Train),
            ] {
                let Some(node) = entry.opt(key) else {
                    continue;
                };
                let Some(tokens_per_s) = node.f64_or_missing()?.filter(|t| *t > 0.0) else {
                    continue;
                };
                let spec = KernelSpec::Model {
                    model: model.clone(),
                    phase,
                    precision: precision.clone(),
                    batch: 1,
                    seq_len: 0,
                    tokens: 1,
                    params: None,
                };
                // One published rate: kept as the time of one token, n = 1.
                let mut record =
                    builder.record(spec, Some(Timing::Single(1.0 / tokens_per_s)), node.path());
                record.notes.push(format!(
                    "single published rate ({key}); the file does not say how it was measured"
                ));
                record
                    .reported
                    .insert("tokens_per_sec".into(), tokens_per_s);
                out.records.push(record);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// *finetun*.json: one fine-tuning run's summary.

struct FineTuning;

impl Importer for FineTuning {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark fine-tuning run"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc
            .get("benchmark")
            .and_then(|b| b.as_str())
            .is_some_and(|b| b.contains("finetun"))
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        let benchmark = root.get("benchmark")?.str()?;
        let framework = if benchmark.starts_with("mlx") {
            "mlx"
        } else if benchmark.starts_with("pytorch_mps") {
            "pytorch_mps"
        } else {
            benchmark.split('_').next().unwrap_or(benchmark)
        };
        let builder = RecordBuilder {
            file,
            framework: framework.to_string(),
        };
        let model = root.get("model")?.str()?.to_string();
        let precision = root.get("precision")?.str()?.to_string();
        let batch = root
            .opt("batch_size")
            .map(|n| n.u64())
            .transpose()?
            .unwrap_or(1);
        let seq_len = root
            .opt("seq_length")
            .map(|n| n.u64())
            .transpose()?
            .unwrap_or(0);
        let params = root.opt("total_params").map(|n| n.u64()).transpose()?;
        let tokens = root.opt("tokens").map(|n| n.u64()).transpose()?;
        let time_s = root
            .opt("time_seconds")
            .map(|n| n.f64_or_missing())
            .transpose()?
            .flatten();
        let (spec_tokens, timing, path) = match (tokens, time_s) {
            (Some(tokens), Some(time_s)) if tokens > 0 && time_s > 0.0 => {
                (tokens, Timing::Single(time_s), "$.time_seconds")
            }
            _ => {
                let node = root
                    .opt("tokens_per_second_avg")
                    .or_else(|| root.opt("tokens_per_second"))
                    .ok_or_else(|| root.error("tokens and time_seconds, or tokens_per_second"))?;
                let rate = node.f64()?;
                if rate <= 0.0 {
                    return Err(node.error("a positive tokens-per-second rate").into());
                }
                (1, Timing::Single(1.0 / rate), "$.tokens_per_second_avg")
            }
        };
        let spec = KernelSpec::Model {
            model,
            phase: ModelPhase::Train,
            precision,
            batch,
            seq_len,
            tokens: spec_tokens,
            params,
        };
        let mut record = builder.record(spec, Some(timing), path);
        record.notes.push(
            "one fine-tuning run: total time over all steps, per-step times not published".into(),
        );
        if let Some(t) = root.opt("trainable_params") {
            record
                .notes
                .push(format!("trainable parameters: {}", t.u64()?));
        }
        out.records.push(record);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Recognised, deliberately not imported.

struct MfuSummary;

impl Importer for MfuSummary {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark MFU summary"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("model_level_mfu").is_some()
            || file
                .doc
                .get("float16")
                .is_some_and(|f| f.get("mfu_percent").is_some())
    }

    fn import(&self, _file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        out.not_imported = Some(
            "derived summary (peaks and utilisation computed from the other files and from \
             assumed datasheet peaks); silirep derives these from the raw measurements"
                .into(),
        );
        Ok(())
    }
}

struct TrafficCapture;

impl Importer for TrafficCapture {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark interconnect capture"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("traffic_summary").is_some()
            || (file.doc.get("markers").is_some() && file.doc.get("samples").is_some())
    }

    fn import(&self, _file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        out.not_imported =
            Some("Thunderbolt traffic between two machines, not a benchmark of one machine".into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine() -> MachineKey {
        MachineKey {
            id: "apple-m9".into(),
            label: "Apple M9".into(),
        }
    }

    fn import(
        name: &str,
        doc: serde_json::Value,
    ) -> (Option<&'static str>, Imported, Result<(), ImportError>) {
        let key = machine();
        let view = FileView {
            rel_path: name,
            file_name: name,
            doc: &doc,
            folder_machine: &key,
        };
        let all = super::super::importers();
        let Some(importer) = all.iter().find(|i| i.recognises(&view)) else {
            return (None, Imported::default(), Ok(()));
        };
        let mut out = Imported::default();
        let result = importer.import(&view, &mut out);
        (Some(importer.format_name()), out, result)
    }

    #[test]
    fn gemm_list_keeps_mean_std_n() {
        let (format, out, result) = import(
            "pytorch_mps_benchmarks.json",
            json!({"framework": "pytorch_mps", "benchmarks": {"gemm": [
                {"name": "gemm_512x512", "size": "512x512", "dtype": "float16", "time_ms": 0.5,
                 "tflops": 0.536870912, "extra": {"std_ms": 0.1, "iterations": 20}}]}}),
        );
        result.unwrap();
        assert_eq!(format, Some("mac-ml-benchmark benchmark lists"));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        let r = &out.records[0];
        assert_eq!(
            r.timing,
            Some(Timing::Summary {
                mean_s: 0.0005,
                std_s: 0.0001,
                n: 20
            })
        );
        assert_eq!(r.spec.name(), "gemm");
        assert_eq!(r.source.json_path, "$.benchmarks.gemm[0]");
        assert_eq!(r.machine, machine());
    }

    #[test]
    fn a_rate_that_contradicts_the_formula_warns() {
        let (_, out, result) = import(
            "x.json",
            json!({"framework": "mlx", "benchmarks": {"gemm": [
                {"size": "512x512", "dtype": "float32", "time_ms": 0.5, "tflops": 9.0}]}}),
        );
        result.unwrap();
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].message.contains("counts work differently"));
    }

    #[test]
    fn attention_and_transformer_block_records() {
        let (_, out, result) = import(
            "x.json",
            json!({"framework": "mlx", "benchmarks": {
                "attention": [{"size": "seq=512", "dtype": "float16", "time_ms": 1.0,
                    "extra": {"batch_size": 1, "num_heads": 32, "head_dim": 128, "seq_len": 512}}],
                "transformer_block": [{"size": "", "dtype": "float16", "time_ms": 21.6,
                    "extra": {"hidden_size": 4096, "num_heads": 32, "intermediate_size": 14336, "seq_len": 256}}]
            }}),
        );
        result.unwrap();
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0].spec.name(), "attention");
        assert_eq!(out.records[0].timing, Some(Timing::Single(0.001)));
        assert_eq!(out.records[1].spec.name(), "layer_forward");
    }

    #[test]
    fn errors_inside_records_are_recorded_not_fatal() {
        let (_, out, result) = import(
            "mlx_benchmarks.json",
            json!({"framework": "mlx", "benchmarks": {"mistral_mlx": [
                {"name": "mistral_mlx", "size": "", "dtype": "", "time_ms": 0.0,
                 "extra": {"error": "401 Client Error.\n\nRepository Not Found"}}]}}),
        );
        result.unwrap();
        let r = &out.records[0];
        assert_eq!(r.error.as_deref(), Some("401 Client Error."));
        assert!(r.timing.is_none());
    }

    #[test]
    fn bandwidth_sizes_are_gib() {
        // 0.25 GiB read in 2.5 ms = 107.37 GB/s.
        let (_, out, result) = import(
            "memory_benchmarks.json",
            json!({"framework": "pytorch_mps", "benchmarks": {
                "bandwidth": [{"name": "sequential_read", "size_gb": 0.25, "time_ms": 2.5,
                    "bandwidth_gbs": 107.3741824, "extra": null}],
                "max_allocation": {"name": "max_allocation", "size_gb": 12.0, "time_ms": 0.0}}}),
        );
        result.unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].spec.name(), "bandwidth_read");
    }

    #[test]
    fn gemm_comparison_with_and_without_spread() {
        let (format, out, result) = import(
            "pytorch_vs_mlx_detailed.json",
            json!({"mlx": [{"size": 1024, "dtype": "float32", "avg_ms": 1.0, "std_ms": 0.1, "samples": 50},
                           {"size": 2048, "dtype": "float32", "avg_ms": 8.0}]}),
        );
        result.unwrap();
        assert_eq!(format, Some("mac-ml-benchmark GEMM comparison"));
        assert_eq!(out.records[0].timing.as_ref().unwrap().n(), 50);
        assert_eq!(out.records[1].timing, Some(Timing::Single(0.008)));
        assert_eq!(out.records[1].framework, "mlx");
    }

    #[test]
    fn layer_benchmark_yields_forward_backward_and_parts() {
        let (format, out, result) = import(
            "layer_benchmark_float16.json",
            json!({"mlx": {"256": {"attention_ms": 2.5, "attention_tflops": 14.15, "ffn_ms": 6.6,
                                   "full_layer_ms": 9.11, "backward_ms": 18.25}}}),
        );
        result.unwrap();
        assert_eq!(format, Some("mac-ml-benchmark layer benchmark"));
        let names: Vec<String> = out.records.iter().map(|r| r.spec.name()).collect();
        assert_eq!(
            names,
            [
                "layer_forward",
                "layer_backward",
                "layer_attention_forward",
                "layer_ffn_forward"
            ]
        );
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn framework_comparison_and_finetune_rates() {
        let (_, out, result) = import(
            "framework_comparison.json",
            json!({"hardware": {"chip": "Apple M9"}, "frameworks": {
                "mlx": {"model": "m", "precision": "4-bit quantized", "inference_tokens_per_sec": 25.0}}}),
        );
        result.unwrap();
        let r = &out.records[0];
        assert_eq!(r.spec.name(), "model_decode");
        assert!((r.tokens_per_s().unwrap() - 25.0).abs() < 1e-9);

        let (_, out, result) = import(
            "pytorch_mps_finetuning.json",
            json!({"benchmark": "pytorch_mps_finetuning", "model": "m", "precision": "float16",
                   "tokens": 5120, "time_seconds": 48.0, "final_loss": null}),
        );
        result.unwrap();
        let r = &out.records[0];
        assert_eq!(r.framework, "pytorch_mps");
        assert!((r.tokens_per_s().unwrap() - 5120.0 / 48.0).abs() < 1e-9);
    }

    #[test]
    fn wrong_types_name_the_path() {
        let (_, _, result) = import(
            "x.json",
            json!({"framework": "mlx", "benchmarks": {"gemm": [{"size": 512, "dtype": "float16", "time_ms": 1.0}]}}),
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "$.benchmarks.gemm[0].size: expected a string, found the number 512"
        );
    }

    #[test]
    fn summaries_and_captures_are_recognised_not_imported() {
        let (format, out, _) = import("mfu_utilization.json", json!({"model_level_mfu": {}}));
        assert_eq!(format, Some("mac-ml-benchmark MFU summary"));
        assert!(out.not_imported.is_some());
        let (format, _, _) = import(
            "x.json",
            json!({"metadata": {}, "markers": [], "samples": []}),
        );
        assert_eq!(format, Some("mac-ml-benchmark interconnect capture"));
        let (format, _, _) = import("x.json", json!({"hello": "world"}));
        assert_eq!(format, None);
    }

    #[test]
    fn unusable_times_are_named_for_what_they_are() {
        assert_eq!(
            no_time_reason("time_ms", None),
            "no time recorded (time_ms is missing)"
        );
        assert_eq!(
            no_time_reason("time_ms", Some(0.0)),
            "no time recorded (time_ms is 0)"
        );
        assert_eq!(
            no_time_reason("avg_ms", Some(-2.5)),
            "invalid time: avg_ms is negative (-2.5)"
        );
    }
}
