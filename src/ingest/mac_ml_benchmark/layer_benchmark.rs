//! layer_benchmark_float16.json: {"pytorch_mps": {"256": {"full_layer_ms": ..., ...}}}

use super::*;

pub(super) struct LayerBenchmark;

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
pub(super) fn check_layer_rate(
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
