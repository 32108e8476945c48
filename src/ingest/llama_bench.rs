//! llama.cpp's `llama-bench` output in its three machine-readable forms (`-o json`, `-o jsonl`,
//! `-o csv`; `tools/llama-bench/README.md`): one object or row per test, with the build
//! (`build_commit`), the hardware (`cpu_info`, `gpu_info`, `backends`), the model
//! (`model_filename`, `model_type`, `model_size`, `model_n_params`), the settings (`n_threads`,
//! `n_gpu_layers`, `n_batch`, ...), the test (`n_prompt`, `n_gen`, `n_depth`) and its timing:
//! `avg_ns`, `stddev_ns` over the repetitions, `avg_ts`, `stddev_ts`, and in JSON and JSONL the
//! repetitions themselves (`samples_ns`, `samples_ts`).
//!
//! A pp test (`n_prompt` > 0, `n_gen` 0) is a `Model` Prefill record with seq_len = tokens =
//! `n_prompt`; a tg test (`n_gen` > 0, `n_prompt` 0) a Decode record generating `n_gen` tokens
//! per iteration after `n_depth` tokens of context (seq_len); a pg test (both) an `EndToEnd`
//! record over `n_prompt + n_gen` tokens, as llama-bench counts its t/s. Timing is the
//! repetitions from `samples_ns` where present; CSV has only the mean (the repetition count is
//! not written), so it stays a single value with `stddev_ns` kept in `reported`. llama-bench's
//! `avg_ts` is the mean of per-repetition rates: it is kept as `tokens_per_s_file_average` and
//! a difference from tokens over the mean time beyond [`RATE_AGREEMENT`] is a warning.

use super::node::Node;
use super::record::{MachineKey, Record, Timing, Verification};
use super::text::{split_csv_line, tool_machine};
use super::{FileView, ImportError, Imported, Importer, MachineInfo, TextImporter, TextView};
use serde_json::Value;
use silirep_core::{KernelSpec, ModelPhase};
use std::collections::BTreeMap;

/// Relative difference between llama-bench's mean of rates and silirep's tokens over mean
/// time that is worth a warning (they differ by the spread of the repetitions, normally far
/// less).
const RATE_AGREEMENT: f64 = 0.005;

/// Members every test must have.
const REQUIRED: [&str; 3] = ["n_prompt", "n_gen", "avg_ns"];

pub struct LlamaBenchJson;
pub struct LlamaBenchJsonl;
pub struct LlamaBenchCsv;

fn is_test(value: &Value) -> bool {
    value.get("avg_ns").is_some() && value.get("n_prompt").is_some() && value.get("n_gen").is_some()
}

impl Importer for LlamaBenchJson {
    fn format_name(&self) -> &'static str {
        "llama-bench JSON"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc
            .as_array()
            .is_some_and(|items| items.first().is_some_and(is_test))
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        for item in file.root().array()? {
            let location = item.path().to_string();
            let test = Test::from_json(&item, &location)?;
            import_or_warn(
                file.rel_path,
                file.folder_machine,
                file.folder_described,
                &test,
                out,
            );
        }
        Ok(())
    }
}

impl TextImporter for LlamaBenchJsonl {
    fn format_name(&self) -> &'static str {
        "llama-bench JSONL"
    }

    fn recognises(&self, file: &TextView) -> bool {
        file.text
            .lines()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .is_some_and(|v| is_test(&v))
    }

    fn import(&self, file: &TextView, out: &mut Imported) -> Result<(), ImportError> {
        for (index, line) in file.text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let location = format!("line {}", index + 1);
            let parsed = super::json_text::parse(line).map_err(|e| ImportError::Invalid {
                path: location.clone(),
                message: format!("not a JSON object: {e}"),
            })?;
            for token in &parsed.non_finite {
                out.warn_at(
                    file.rel_path,
                    &location,
                    format!(
                        "non-finite token {} at {} read as a missing value",
                        token.token, token.path
                    ),
                );
            }
            let node = Node::root(&parsed.value);
            let test = Test::from_json(&node, &location)?;
            import_or_warn(
                file.rel_path,
                file.folder_machine,
                file.folder_described,
                &test,
                out,
            );
        }
        Ok(())
    }
}

impl TextImporter for LlamaBenchCsv {
    fn format_name(&self) -> &'static str {
        "llama-bench CSV"
    }

    fn recognises(&self, file: &TextView) -> bool {
        file.text.lines().next().is_some_and(|header| {
            split_csv_line(header).is_ok_and(|fields| {
                ["model_type", "n_prompt", "n_gen", "avg_ns"]
                    .iter()
                    .all(|c| fields.iter().any(|f| f == c))
            })
        })
    }

    fn import(&self, file: &TextView, out: &mut Imported) -> Result<(), ImportError> {
        let mut lines = file.text.lines().enumerate();
        let header = match lines.next() {
            Some((_, h)) => split_csv_line(h).map_err(|message| ImportError::Invalid {
                path: "line 1".into(),
                message,
            })?,
            None => Vec::new(),
        };
        for column in REQUIRED {
            if !header.iter().any(|h| h == column) {
                return Err(ImportError::Invalid {
                    path: "line 1".into(),
                    message: format!("expected a column {column:?} in the header, found none"),
                });
            }
        }
        for (index, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let location = format!("line {}", index + 1);
            let fields = match split_csv_line(line) {
                Ok(f) => f,
                Err(message) => {
                    out.warn_at(file.rel_path, &location, format!("{message}: row left out"));
                    continue;
                }
            };
            if fields.len() != header.len() {
                out.warn_at(
                    file.rel_path,
                    &location,
                    format!(
                        "{} fields where the header has {} columns: row left out",
                        fields.len(),
                        header.len()
                    ),
                );
                continue;
            }
            let values: BTreeMap<String, Value> = header
                .iter()
                .cloned()
                .zip(fields.into_iter().map(Value::String))
                .collect();
            let test = Test {
                values,
                location: location.clone(),
                separator: ", column ",
            };
            import_or_warn(
                file.rel_path,
                file.folder_machine,
                file.folder_described,
                &test,
                out,
            );
        }
        Ok(())
    }
}

/// One test's fields, whichever form they came in (CSV values are strings).
struct Test {
    values: BTreeMap<String, Value>,
    /// `$[2]` or `line 3`.
    location: String,
    /// Joins the location and a field's name: `.` for JSON paths, `, column ` for lines.
    separator: &'static str,
}

impl Test {
    fn from_json(node: &Node, location: &str) -> Result<Test, ImportError> {
        let values = node
            .object()?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Test {
            values,
            location: location.to_string(),
            separator: if location.starts_with('$') {
                "."
            } else {
                ", member "
            },
        })
    }

    fn at(&self, key: &str) -> String {
        format!("{}{}{key}", self.location, self.separator)
    }

    fn invalid(&self, key: &str, expected: &str) -> ImportError {
        let found = match self.values.get(key) {
            None => "nothing (missing)".to_string(),
            Some(v) => super::node::describe(v),
        };
        ImportError::Invalid {
            path: self.at(key),
            message: format!("expected {expected}, found {found}"),
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A number, from a JSON number or a CSV string; `Ok(None)` when absent, null or empty.
    fn number(&self, key: &str) -> Result<Option<f64>, ImportError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| self.invalid(key, "a number")),
            Some(_) => Err(self.invalid(key, "a number")),
        }
    }

    fn count(&self, key: &str) -> Result<u64, ImportError> {
        match self.number(key)? {
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(63) => Ok(v as u64),
            _ => Err(self.invalid(key, "a non-negative integer")),
        }
    }

    fn samples_ns(&self) -> Result<Option<Vec<f64>>, ImportError> {
        match self.values.get("samples_ns") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                let mut samples = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_f64() {
                        Some(v) if v.is_finite() && v > 0.0 => samples.push(v),
                        _ => {
                            return Err(ImportError::Invalid {
                                path: format!("{}[{i}]", self.at("samples_ns")),
                                message: format!(
                                    "expected a positive time in ns, found {}",
                                    super::node::describe(item)
                                ),
                            });
                        }
                    }
                }
                Ok((!samples.is_empty()).then_some(samples))
            }
            Some(_) => Err(self.invalid("samples_ns", "an array of times in ns")),
        }
    }
}

/// One bad test costs that test, with a warning naming it, not the file.
fn import_or_warn(
    rel_path: &str,
    folder_machine: &MachineKey,
    folder_described: bool,
    test: &Test,
    out: &mut Imported,
) {
    if let Err(e) = import_test(rel_path, folder_machine, folder_described, test, out) {
        let (location, message) = match e {
            ImportError::Invalid { path, message } => (path, message),
            ImportError::Shape(shape) => (
                shape.path.clone(),
                format!("expected {}, found {}", shape.expected, shape.found),
            ),
        };
        out.warn_at(rel_path, &location, format!("{message}: test left out"));
    }
}

fn import_test(
    rel_path: &str,
    folder_machine: &MachineKey,
    folder_described: bool,
    test: &Test,
    out: &mut Imported,
) -> Result<(), ImportError> {
    let n_prompt = test.count("n_prompt")?;
    let n_gen = test.count("n_gen")?;
    let n_depth = match test.number("n_depth")? {
        Some(_) => test.count("n_depth")?,
        None => 0,
    };
    let (phase, tokens, seq_len, what) = match (n_prompt, n_gen) {
        (0, 0) => {
            out.warn_at(
                rel_path,
                &test.location,
                "a test with n_prompt = n_gen = 0: left out",
            );
            return Ok(());
        }
        (p, 0) => (
            ModelPhase::Prefill,
            p,
            n_depth + p,
            format!("pp{p}: the prompt's {p} tokens processed in batches"),
        ),
        (0, g) => (
            ModelPhase::Decode,
            g,
            n_depth,
            format!("tg{g}: {g} tokens generated one at a time per iteration"),
        ),
        (p, g) => (
            ModelPhase::EndToEnd,
            p + g,
            n_depth + p,
            format!(
                "pg{p},{g}: a {p}-token prompt then {g} generated tokens, counted together as llama-bench counts its t/s"
            ),
        ),
    };
    let model_type = test.text("model_type").unwrap_or_default();
    let model = test
        .text("model_filename")
        .and_then(|f| {
            let name = f.rsplit(['/', '\\']).next()?.to_string();
            Some(name.strip_suffix(".gguf").unwrap_or(&name).to_string())
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| model_type.clone());
    let precision = precision_of(&model_type);
    let params = match test.number("model_n_params")? {
        Some(_) => Some(test.count("model_n_params")?),
        None => None,
    };
    let spec = KernelSpec::Model {
        model,
        phase,
        precision,
        batch: 1,
        seq_len,
        tokens,
        params,
    };

    let avg_ns = test.number("avg_ns")?;
    let samples = test.samples_ns()?;
    let (timing, error) = match (&samples, avg_ns) {
        (Some(s), _) => (
            Some(Timing::Samples(s.iter().map(|ns| ns / 1e9).collect())),
            None,
        ),
        (None, Some(avg)) if avg.is_finite() && avg > 0.0 => {
            (Some(Timing::Single(avg / 1e9)), None)
        }
        (None, Some(avg)) => (None, Some(format!("invalid time: avg_ns is {avg}"))),
        (None, None) => (
            None,
            Some("no time recorded (avg_ns is missing)".to_string()),
        ),
    };
    let machine = machine(test, folder_machine, folder_described);
    if !folder_described && machine != *folder_machine {
        let text = |key: &str| test.text(key).filter(|v| !v.trim().is_empty());
        out.machines.push((
            machine.clone(),
            MachineInfo {
                label: machine.label.clone(),
                cpu_model: text("cpu_info"),
                accelerator: text("gpu_info"),
                described_by: vec![rel_path.to_string()],
                ..Default::default()
            },
        ));
    }
    let mut record = Record {
        machine,
        framework: "llama_cpp".into(),
        spec,
        timing,
        verification: Verification::NotReported,
        error,
        run_id: None,
        source: super::Provenance {
            file: rel_path.to_string(),
            json_path: test.location.clone(),
        },
        notes: vec![what],
        clock: None,
        reported: BTreeMap::new(),
    };
    let settings: Vec<String> = [
        ("backends", "backends"),
        ("n_gpu_layers", "ngl"),
        ("n_threads", "threads"),
        ("n_batch", "n_batch"),
        ("n_ubatch", "n_ubatch"),
        ("flash_attn", "flash_attn"),
        ("type_k", "type_k"),
        ("build_commit", "build"),
        ("test_time", "at"),
    ]
    .iter()
    .filter_map(|(key, name)| test.text(key).map(|v| format!("{name} {v}")))
    .collect();
    if !settings.is_empty() {
        record
            .notes
            .push(format!("llama-bench: {}", settings.join(", ")));
    }
    if samples.is_none() && record.timing.is_some() {
        record.notes.push(
            "the file keeps only the mean over repetitions (samples_ns absent, repetition \
             count not written): one value; stddev_ns in reported stddev_s"
                .into(),
        );
        if let Some(std) = test.number("stddev_ns")? {
            record.reported.insert("stddev_s".into(), std / 1e9);
        }
    }
    if let (Some(s), Some(avg)) = (&samples, avg_ns) {
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        if (mean - avg).abs() > 1e-3 * avg.abs().max(1.0) {
            out.warn_at(
                rel_path,
                &test.at("avg_ns"),
                format!("avg_ns {avg} is not the mean of samples_ns ({mean:.0})"),
            );
        }
    }
    if let Some(stated) = test.number("avg_ts")? {
        record
            .reported
            .insert("tokens_per_s_file_average".into(), stated);
        let mean_s = match (&samples, avg_ns) {
            (Some(s), _) => Some(s.iter().sum::<f64>() / s.len() as f64 / 1e9),
            (None, Some(avg)) if avg > 0.0 => Some(avg / 1e9),
            _ => None,
        };
        if let Some(mean_s) = mean_s {
            let ours = tokens as f64 / mean_s;
            if (stated - ours).abs() > RATE_AGREEMENT * ours {
                out.warn_at(
                    rel_path,
                    &test.at("avg_ts"),
                    format!(
                        "avg_ts {stated:.3} tokens/s (llama-bench's mean of per-repetition \
                         rates) differs from {tokens} tokens over the mean time ({ours:.3} \
                         tokens/s) by more than {:.1}%: the repetitions vary widely; silirep \
                         uses tokens over time",
                        RATE_AGREEMENT * 100.0
                    ),
                );
            }
        }
    }
    out.records.push(record);
    Ok(())
}

/// `qwen2 7B Q4_K - Medium` → `Q4_K - Medium`; `llama 7B mostly Q4_0` → `Q4_0`: what follows
/// the parameter count. The whole type when it has no parameter count.
fn precision_of(model_type: &str) -> String {
    let tokens: Vec<&str> = model_type.split_whitespace().collect();
    let size_at = tokens.iter().position(|t| is_parameter_count(t));
    match size_at {
        Some(i) if i + 1 < tokens.len() => {
            let rest = &tokens[i + 1..];
            let rest = if rest.first() == Some(&"mostly") {
                &rest[1..]
            } else {
                rest
            };
            rest.join(" ")
        }
        _ => model_type.to_string(),
    }
}

/// `7B`, `0.5B`, `135M`, `8x7B`: a model's parameter count as llama.cpp writes it.
fn is_parameter_count(token: &str) -> bool {
    let Some(number) = token.strip_suffix(['B', 'M']) else {
        return false;
    };
    !number.is_empty()
        && number
            .split('x')
            .all(|part| !part.is_empty() && part.parse::<f64>().is_ok())
}

/// The machine that ran the test: the folder's when a file described it, else named after the
/// GPU (`gpu_info`) or, for CPU-only runs, the CPU (`cpu_info`).
fn machine(test: &Test, folder_machine: &MachineKey, folder_described: bool) -> MachineKey {
    if folder_described {
        return folder_machine.clone();
    }
    let cpu = test.text("cpu_info").unwrap_or_default();
    let gpu = test.text("gpu_info").filter(|g| !g.trim().is_empty());
    let label = gpu.clone().unwrap_or_else(|| cpu.clone());
    if label.trim().is_empty() {
        return folder_machine.clone();
    }
    tool_machine(
        label.trim(),
        "",
        cpu.trim(),
        gpu.as_deref().map(str::trim),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_what_follows_the_parameter_count() {
        assert_eq!(precision_of("qwen2 7B Q4_K - Medium"), "Q4_K - Medium");
        assert_eq!(precision_of("llama 7B mostly Q4_0"), "Q4_0");
        assert_eq!(precision_of("llama 13B F16"), "F16");
        assert_eq!(precision_of("mystery"), "mystery");
    }
}
