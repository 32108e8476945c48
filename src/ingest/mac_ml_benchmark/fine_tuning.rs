//! *finetun*.json: one fine-tuning run's summary.

use super::*;

pub(super) struct FineTuning;

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
