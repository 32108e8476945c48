//! framework_comparison.json: {"hardware": {...}, "frameworks": {"mlx": {...tokens_per_sec}}}

use super::*;

pub(super) struct FrameworkComparison;

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
