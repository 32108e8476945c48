//! Which analyses a report holds: the machines each one compares, its title, and the question
//! it answers.
//!
//! A results tree of ten machines has 45 pairs, and most of them (a laptop CPU against a
//! datacenter GPU) answer no question anyone asked. So comparisons happen inside analyses, not
//! across the whole tree. The analyses come from `analyses.toml` at the root of the results
//! directory (or `--analyses FILE`); without one, machines are grouped by class — what does the
//! work: NVIDIA GPUs, Apple Silicon, CPUs without an accelerator — one analysis per class.
//!
//! ```toml
//! [[analysis]]
//! slug = "h100-vs-h200"                  # folder under -o; letters, digits and dashes
//! title = "NVIDIA H100 vs H200"
//! question = "Same compute, more bandwidth: what does the H200 buy?"
//! machines = ["nvidia-h100-*", "nvidia-h200-*"]   # labels, ids, `*` globs, or class:NAME
//! model = "llama-3-8b"                   # model-level predictions (default mistral-7b,
//! prompt_tokens = 871                    #   an 871-token prompt, 256 new tokens)
//! new_tokens = 256
//! link = { name = "Thunderbolt 5 bridge", gbit_per_s = 37.6, source = "iperf3, seed README" }
//! ```
//!
//! `link` is the measured (or stated) link between the analysis's two machines; without it the
//! disaggregation planner uses the datasheet catalog's and says so.
//!
//! A machine may sit in several analyses; one in none still gets its machine page, and the
//! index names it. A selector that matches nothing is a warning, never a silent empty page.

use super::predictions::{self, ConfiguredLink, ModelRequest};
use crate::ingest::{Dataset, MachineInfo, MachineKey, Warning};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The file name looked for at the root of a results directory.
pub const CONFIG_FILE: &str = "analyses.toml";

/// One analysis of the report: the machines it compares and what it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSet {
    /// Folder name under `-o` when the report holds several analyses.
    pub slug: String,
    pub title: String,
    pub question: String,
    /// In the order of the dataset's machines (sorted), so output does not depend on the
    /// order selectors were written in.
    pub machines: Vec<MachineKey>,
    /// What the model-level predictions predict.
    pub request: ModelRequest,
    /// The link between the machines, when the analysis states one.
    pub link: Option<ConfiguredLink>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    analysis: Vec<AnalysisSpec>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisSpec {
    slug: String,
    title: String,
    #[serde(default)]
    question: Option<String>,
    machines: Vec<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    new_tokens: Option<u64>,
    #[serde(default)]
    link: Option<LinkSpec>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSpec {
    name: String,
    gbit_per_s: f64,
    source: String,
}

/// The analyses as configured, still to be matched against the machines found.
#[derive(Debug, Clone)]
pub struct SetsConfig {
    specs: Vec<AnalysisSpec>,
    /// Shown in messages: where the configuration came from.
    origin: String,
    /// Per spec, the model request and link it states (checked on reading).
    models: Vec<(ModelRequest, Option<ConfiguredLink>)>,
}

/// Reads `path` as an analyses file; errors name the file and what is wrong in it.
pub fn read_config(path: &Path) -> Result<SetsConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the analyses file {}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let file: ConfigFile = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    // Named by file name alone in warnings, like result files (paths relative to the results).
    let origin = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut seen = BTreeMap::new();
    let mut models = Vec::new();
    for (i, spec) in file.analysis.iter().enumerate() {
        let at = format!("{origin}: analysis[{i}]");
        anyhow::ensure!(
            !spec.slug.is_empty()
                && spec
                    .slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{at}: slug {:?} must be lower-case letters, digits and dashes (it names a folder)",
            spec.slug
        );
        anyhow::ensure!(
            !matches!(spec.slug.as_str(), "machines" | "charts"),
            "{at}: slug {:?} is reserved for the report's own folders",
            spec.slug
        );
        if let Some(first) = seen.insert(spec.slug.clone(), i) {
            anyhow::bail!(
                "{at}: slug {:?} is already used by analysis[{first}]",
                spec.slug
            );
        }
        anyhow::ensure!(
            !spec.title.trim().is_empty(),
            "{at}: title must not be empty"
        );
        anyhow::ensure!(
            !spec.machines.is_empty(),
            "{at}: machines must list at least one label, id, glob or class:NAME"
        );
        models.push(model_settings(spec).map_err(|e| anyhow::anyhow!("{at}: {e}"))?);
    }
    anyhow::ensure!(
        !file.analysis.is_empty(),
        "{origin}: no [[analysis]] tables; remove the file to get one analysis per machine class"
    );
    Ok(SetsConfig {
        specs: file.analysis,
        origin,
        models,
    })
}

/// An analysis's model request and link, checked: a known preset, counts of at least one, a
/// positive finite bandwidth with a name and a source.
fn model_settings(spec: &AnalysisSpec) -> Result<(ModelRequest, Option<ConfiguredLink>), String> {
    let defaults = ModelRequest::default();
    let model = match &spec.model {
        Some(name) => predictions::preset(name).map_err(|e| format!("model: {e}"))?,
        None => defaults.model,
    };
    let count = |value: Option<u64>, default: u64, field: &str| match value {
        Some(0) => Err(format!("{field} must be at least 1, found 0")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let request = ModelRequest {
        model,
        prompt_tokens: count(spec.prompt_tokens, defaults.prompt_tokens, "prompt_tokens")?,
        new_tokens: count(spec.new_tokens, defaults.new_tokens, "new_tokens")?,
    };
    let link = match &spec.link {
        Some(l) => {
            if l.name.trim().is_empty() || l.source.trim().is_empty() {
                return Err(
                    "link: name and source must not be empty (say what the link is \
                            and how its bandwidth was measured)"
                        .into(),
                );
            }
            if !(l.gbit_per_s.is_finite() && l.gbit_per_s > 0.0) {
                return Err(format!(
                    "link.gbit_per_s: expected a positive number of Gbit/s, found {}",
                    l.gbit_per_s
                ));
            }
            Some(ConfiguredLink {
                name: l.name.trim().to_string(),
                gbit_per_s: l.gbit_per_s,
                source: l.source.trim().to_string(),
            })
        }
        None => None,
    };
    Ok((request, link))
}

/// `class:NAME` of a machine: the vendor of its accelerator, or `cpu` when it has none.
pub fn machine_class(key: &MachineKey, info: Option<&MachineInfo>) -> String {
    let accelerator = info.and_then(|i| i.accelerator.as_deref());
    let Some(name) = accelerator.filter(|a| !a.trim().is_empty()) else {
        // Imported files without a system description still say what ran them in the label.
        return if key.label.starts_with("Apple M") {
            "apple".into()
        } else {
            "cpu".into()
        };
    };
    let lower = name.to_ascii_lowercase();
    let known = [
        ("nvidia", "nvidia"),
        ("geforce", "nvidia"),
        ("tesla", "nvidia"),
        ("apple", "apple"),
        ("amd", "amd"),
        ("radeon", "amd"),
        ("instinct", "amd"),
        ("intel", "intel"),
    ];
    if let Some((_, class)) = known.iter().find(|(word, _)| lower.contains(word)) {
        return class.to_string();
    }
    // Bare NVIDIA model names (`H100 80GB HBM3`, `A100-SXM4-40GB`) as some tools write them.
    let first = lower.split_whitespace().next().unwrap_or("");
    if first.len() >= 2
        && matches!(first.as_bytes()[0], b'a' | b'h' | b'b' | b'l' | b'v')
        && first.as_bytes()[1].is_ascii_digit()
    {
        return "nvidia".into();
    }
    crate::util::slug(first)
}

fn class_title(class: &str) -> String {
    match class {
        "nvidia" => "NVIDIA GPUs".into(),
        "apple" => "Apple Silicon".into(),
        "amd" => "AMD GPUs".into(),
        "intel" => "Intel GPUs".into(),
        "cpu" => "CPUs".into(),
        other => format!("{other} accelerators"),
    }
}

/// The question an analysis answers when nobody wrote one down.
pub fn default_question(labels: &[&str]) -> String {
    match labels {
        [] => "What did these result files measure?".into(),
        [one] => format!("What can {one} do, and which roof bounds each workload?"),
        [a, b] => format!("Which of {a} and {b} is faster for what work, and why?"),
        many => format!(
            "How do these {} machines compare, and which should do what?",
            many.len()
        ),
    }
}

/// What `choose` found: the analyses, and what the user should hear about the selection.
#[derive(Debug, Default)]
pub struct Chosen {
    pub sets: Vec<ReportSet>,
    /// Machines in no analysis (they still get a machine page).
    pub unassigned: Vec<MachineKey>,
    /// Selectors that matched nothing, as warnings of the analyses file.
    pub warnings: Vec<Warning>,
}

/// The analyses for `dataset`: as configured, or one per machine class.
pub fn choose(dataset: &Dataset, config: Option<&SetsConfig>) -> Chosen {
    let machines: Vec<&MachineKey> = dataset.machines.keys().collect();
    let class_of = |key: &MachineKey| machine_class(key, dataset.machines.get(key));
    let mut chosen = Chosen::default();
    match config {
        None => {
            let mut by_class: BTreeMap<String, Vec<MachineKey>> = BTreeMap::new();
            for key in &machines {
                by_class
                    .entry(class_of(key))
                    .or_default()
                    .push((*key).clone());
            }
            for (class, keys) in by_class {
                let labels: Vec<&str> = keys.iter().map(|k| k.label.as_str()).collect();
                let title = match labels.as_slice() {
                    [one] => one.to_string(),
                    [a, b] => format!("{a} vs {b}"),
                    _ => class_title(&class),
                };
                chosen.sets.push(ReportSet {
                    slug: class.clone(),
                    title,
                    question: default_question(&labels),
                    machines: keys,
                    request: ModelRequest::default(),
                    link: None,
                });
            }
        }
        Some(config) => {
            for (spec, (request, link)) in config.specs.iter().zip(&config.models) {
                let mut keys = Vec::new();
                for selector in &spec.machines {
                    let matched: Vec<&MachineKey> = machines
                        .iter()
                        .copied()
                        .filter(|k| selects(selector, k, &class_of(k)))
                        .collect();
                    if matched.is_empty() {
                        chosen.warnings.push(Warning {
                            file: config.origin.clone(),
                            location: format!("analysis {:?}", spec.slug),
                            message: format!(
                                "machine selector {selector:?} matches no machine in the results"
                            ),
                        });
                    }
                    keys.extend(matched.into_iter().cloned());
                }
                keys.sort();
                keys.dedup();
                let labels: Vec<&str> = keys.iter().map(|k| k.label.as_str()).collect();
                chosen.sets.push(ReportSet {
                    slug: spec.slug.clone(),
                    title: spec.title.trim().to_string(),
                    question: spec
                        .question
                        .as_deref()
                        .map(str::trim)
                        .filter(|q| !q.is_empty())
                        .map(str::to_string)
                        .unwrap_or_else(|| default_question(&labels)),
                    machines: keys,
                    request: request.clone(),
                    link: link.clone(),
                });
            }
        }
    }
    chosen.unassigned = machines
        .into_iter()
        .filter(|k| !chosen.sets.iter().any(|s| s.machines.contains(k)))
        .cloned()
        .collect();
    chosen
}

/// Whether `selector` names this machine: `class:NAME`, else its exact label or id, else a
/// `*` glob over either.
fn selects(selector: &str, key: &MachineKey, class: &str) -> bool {
    let selector = selector.trim();
    if let Some(name) = selector.strip_prefix("class:") {
        return name.trim().eq_ignore_ascii_case(class);
    }
    glob_match(selector, &key.label) || glob_match(selector, &key.id)
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, label: &str) -> MachineKey {
        MachineKey {
            id: id.into(),
            label: label.into(),
        }
    }

    fn dataset(machines: &[(&str, &str, Option<&str>)]) -> Dataset {
        let mut d = Dataset::default();
        for (id, label, accelerator) in machines {
            d.machines.insert(
                key(id, label),
                MachineInfo {
                    label: label.to_string(),
                    accelerator: accelerator.map(str::to_string),
                    ..Default::default()
                },
            );
        }
        d
    }

    fn config(text: &str) -> Result<SetsConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, text).unwrap();
        read_config(&path)
    }

    #[test]
    fn globs_match_whole_strings() {
        assert!(glob_match(
            "nvidia-h100-*",
            "nvidia-h100-80gb-hbm3-1f82d312"
        ));
        assert!(!glob_match("nvidia-h100-*", "nvidia-h200-8f0cc4b3"));
        assert!(glob_match("*EPYC*", "AMD EPYC"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("Apple M5", "Apple M5"));
        assert!(!glob_match("Apple M5", "Apple M5 Pro"));
    }

    #[test]
    fn classes_come_from_the_accelerator() {
        let k = key("x", "x");
        let info = |a: Option<&str>| MachineInfo {
            accelerator: a.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(
            machine_class(&k, Some(&info(Some("NVIDIA H200")))),
            "nvidia"
        );
        assert_eq!(
            machine_class(&k, Some(&info(Some("H100 80GB HBM3")))),
            "nvidia"
        );
        assert_eq!(machine_class(&k, Some(&info(Some("Apple M5")))), "apple");
        assert_eq!(machine_class(&k, Some(&info(None))), "cpu");
        assert_eq!(
            machine_class(&key("m5", "Apple M5"), Some(&info(None))),
            "apple"
        );
    }

    #[test]
    fn without_a_file_each_class_is_one_analysis_and_cross_class_pairs_never_meet() {
        let d = dataset(&[
            ("amd-epyc-1", "AMD EPYC", None),
            ("nvidia-h100-1", "H100", Some("NVIDIA H100 80GB HBM3")),
            ("nvidia-h200-2", "H200", Some("NVIDIA H200")),
            ("m5", "Apple M5", Some("Apple M5")),
        ]);
        let chosen = choose(&d, None);
        let summary: Vec<(String, usize)> = chosen
            .sets
            .iter()
            .map(|s| (s.title.clone(), s.machines.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Apple M5".to_string(), 1),
                ("AMD EPYC".to_string(), 1),
                ("H100 vs H200".to_string(), 2),
            ]
        );
        assert!(chosen.unassigned.is_empty());
        assert!(chosen.warnings.is_empty());
    }

    #[test]
    fn a_file_picks_machines_by_label_id_glob_and_class_and_names_the_rest() {
        let d = dataset(&[
            ("amd-epyc-1", "AMD EPYC", None),
            ("xeon-1", "Xeon", None),
            ("nvidia-h100-1", "H100", Some("NVIDIA H100 80GB HBM3")),
            ("nvidia-h200-2", "H200", Some("NVIDIA H200")),
            ("m5", "Apple M5", Some("Apple M5")),
        ]);
        let c = config(
            r#"
[[analysis]]
slug = "hopper"
title = "H100 vs H200"
question = "What does the H200 buy?"
machines = ["nvidia-h100-*", "H200"]

[[analysis]]
slug = "cpus"
title = "CPUs"
machines = ["class:cpu", "nothing-like-this"]
"#,
        )
        .unwrap();
        let chosen = choose(&d, Some(&c));
        assert_eq!(chosen.sets.len(), 2);
        assert_eq!(chosen.sets[0].question, "What does the H200 buy?");
        assert_eq!(
            chosen.sets[0]
                .machines
                .iter()
                .map(|k| k.label.as_str())
                .collect::<Vec<_>>(),
            vec!["H100", "H200"]
        );
        assert_eq!(
            chosen.sets[1].question,
            "Which of AMD EPYC and Xeon is faster for what work, and why?"
        );
        assert_eq!(chosen.unassigned, vec![key("m5", "Apple M5")]);
        assert_eq!(chosen.warnings.len(), 1);
        let w = chosen.warnings[0].to_string();
        assert!(
            w.contains("\"nothing-like-this\" matches no machine"),
            "{w}"
        );
        assert!(w.starts_with("analyses.toml: analysis \"cpus\""), "{w}");
    }

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let e = config("[[analysis]]\nslug = \"A B\"\ntitle = \"x\"\nmachines = [\"*\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("analysis[0]: slug \"A B\" must be lower-case"),
            "{e}"
        );
        let e = config("[[analysis]]\nslug = \"a\"\ntitle = \"x\"\nmachines = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("machines must list at least one"), "{e}");
        let e = config("[[analysis]]\nslug = \"a\"\ntitle = \"x\"\nmachine = [\"*\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `machine`"), "{e}");
        let e = config(
            "[[analysis]]\nslug = \"a\"\ntitle = \"x\"\nmachines = [\"*\"]\n\
             [[analysis]]\nslug = \"a\"\ntitle = \"y\"\nmachines = [\"*\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("already used by analysis[0]"), "{e}");
        let e = config("not toml at all [").unwrap_err().to_string();
        assert!(e.contains(CONFIG_FILE), "{e}");
    }

    #[test]
    fn model_requests_and_links_are_read_and_checked() {
        let d = dataset(&[("m5", "Apple M5", Some("Apple M5"))]);
        let c = config(
            r#"
[[analysis]]
slug = "a"
title = "x"
machines = ["*"]
model = "Llama-3-8B"
prompt_tokens = 512
link = { name = "Thunderbolt 5 bridge", gbit_per_s = 37.6, source = "iperf3 between the two machines" }

[[analysis]]
slug = "b"
title = "y"
machines = ["*"]
"#,
        )
        .unwrap();
        let chosen = choose(&d, Some(&c));
        let a = &chosen.sets[0];
        assert_eq!(a.request.model.name, "Llama-3-8B");
        assert_eq!(a.request.prompt_tokens, 512);
        assert_eq!(a.request.new_tokens, 256);
        let link = a.link.as_ref().unwrap();
        assert_eq!(link.gbit_per_s, 37.6);
        assert_eq!(link.to_link().bandwidth_bytes_per_s, 4.7e9);
        assert_eq!(chosen.sets[1].request, ModelRequest::default());
        assert!(chosen.sets[1].link.is_none());

        let base = "[[analysis]]\nslug = \"a\"\ntitle = \"x\"\nmachines = [\"*\"]\n";
        let e = config(&format!("{base}model = \"mistral-8b\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "analysis[0]: model: unknown model \"mistral-8b\" (did you mean \"mistral-7b\"?)"
            ),
            "{e}"
        );
        let e = config(&format!("{base}new_tokens = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("new_tokens must be at least 1"), "{e}");
        let e = config(&format!(
            "{base}link = {{ name = \"tb\", gbit_per_s = -1.0, source = \"x\" }}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("link.gbit_per_s: expected a positive"), "{e}");
        let e = config(&format!(
            "{base}link = {{ name = \"tb\", gbit_per_s = 40.0 }}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field `source`"), "{e}");
    }
}
