//! The input side of `silirep report`: walk a results directory, recognise every file, and
//! turn what it holds into [`Record`]s — one per measured configuration — plus the list of
//! files skipped, failed and warned about.
//!
//! One [`Importer`] per JSON format and one [`TextImporter`] per text format (nccl-tests
//! logs, llama-bench CSV and JSONL); adding a format is one new file and one line in
//! [`importers`] or [`text_importers`]. Files are recognised by their content, not their
//! extension: every file under the root is read, JSON is tried first, then the text formats
//! (Markdown files excepted: documentation that quotes a tool's output is not a result); a
//! text file no format claims (notes, a log of something else) is passed over silently, while
//! a `.json` file no format claims is listed as unrecognised. A bad file never stops the others from
//! loading: its problem is recorded with the file, the position and what was expected, and
//! the caller decides (`--strict`) whether that is fatal.
//!
//! Besides records, a file may hold a time series ([`capture::TrafficCapture`]: interface
//! traffic sampled during a distributed run); those are kept whole in [`Dataset::captures`]
//! for charts, never turned into records.

pub mod capture;
pub mod cross_checks;
pub mod folders;
pub mod iperf3;
pub mod json_text;
pub mod llama_bench;
pub mod mac_ml_benchmark;
pub mod native;
pub mod nccl_tests;
pub mod node;
pub mod record;
pub mod table;
pub mod text;

use node::{Node, ShapeError};
pub use record::{MachineKey, Provenance, Record, RunInfo, Timing, Verification};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What we know about a machine beyond its name, from a native run or a system-info file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineInfo {
    pub label: String,
    pub cpu_model: Option<String>,
    pub cpu_cores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub accelerator: Option<String>,
    pub accelerator_compute_units: Option<u64>,
    pub os: Option<String>,
    /// Files that described this machine.
    pub described_by: Vec<String>,
}

/// One file, as an importer sees it.
pub struct FileView<'a> {
    /// Relative to the results root, with `/` separators: stable across machines.
    pub rel_path: &'a str,
    pub file_name: &'a str,
    pub doc: &'a Value,
    /// The machine this file's folder belongs to (from `system_info.json` or a silirep run
    /// in the folder, else the folder's name).
    pub folder_machine: &'a MachineKey,
    /// Whether a file described `folder_machine` (else it is only the folder's name).
    pub folder_described: bool,
}

impl FileView<'_> {
    pub fn root(&self) -> Node<'_> {
        Node::root(self.doc)
    }

    pub fn provenance(&self, json_path: &str) -> Provenance {
        Provenance {
            file: self.rel_path.to_string(),
            json_path: json_path.to_string(),
        }
    }
}

/// What an importer got out of one file.
#[derive(Debug, Default)]
pub struct Imported {
    pub records: Vec<Record>,
    /// Machine description carried by the file, keyed by machine id.
    pub machines: Vec<(MachineKey, MachineInfo)>,
    pub warnings: Vec<Warning>,
    /// The silirep runs the file holds (one for a native run file).
    pub runs: Vec<RunInfo>,
    /// Time series the file holds (interface traffic during a distributed run).
    pub captures: Vec<capture::TrafficCapture>,
    /// Links between devices or machines as the file's measurements saw them.
    pub links: Vec<(MachineKey, SeenLink)>,
    /// Set when the file is recognised but deliberately holds nothing to import (a derived
    /// summary): the reason is shown in the inventory.
    pub not_imported: Option<String>,
}

impl Imported {
    pub fn warn(&mut self, file: &FileView, json_path: &str, message: impl Into<String>) {
        self.warn_at(file.rel_path, json_path, message);
    }

    /// A warning at any location: a JSON path, or `line L` in a text file.
    pub fn warn_at(&mut self, file: &str, location: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            file: file.to_string(),
            location: location.to_string(),
            message: message.into(),
        });
    }
}

/// One text file (not JSON), as a text importer sees it.
pub struct TextView<'a> {
    pub rel_path: &'a str,
    pub file_name: &'a str,
    pub text: &'a str,
    pub folder_machine: &'a MachineKey,
    pub folder_described: bool,
}

impl TextView<'_> {
    pub fn provenance(&self, location: &str) -> Provenance {
        Provenance {
            file: self.rel_path.to_string(),
            json_path: location.to_string(),
        }
    }
}

/// A reader for a text format. `recognises` must be specific (a format's own header lines),
/// because every text file under the results root is offered to it.
pub trait TextImporter {
    fn format_name(&self) -> &'static str;
    fn recognises(&self, file: &TextView) -> bool;
    fn import(&self, file: &TextView, out: &mut Imported) -> Result<(), ImportError>;
}

pub trait Importer {
    /// Shown in the inventory, e.g. `silirep run v1`, `mac-ml-benchmark GEMM comparison`.
    fn format_name(&self) -> &'static str;
    /// Cheap structural test: does this file have this format's shape?
    fn recognises(&self, file: &FileView) -> bool;
    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError>;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Shape(#[from] ShapeError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Every known JSON format, most specific first.
pub fn importers() -> Vec<Box<dyn Importer>> {
    let mut all: Vec<Box<dyn Importer>> = vec![Box::new(native::NativeRun)];
    all.extend(mac_ml_benchmark::importers());
    all.push(Box::new(iperf3::Iperf3));
    all.push(Box::new(llama_bench::LlamaBenchJson));
    all
}

/// Every known text format.
pub fn text_importers() -> Vec<Box<dyn TextImporter>> {
    vec![
        Box::new(nccl_tests::NcclTests),
        Box::new(llama_bench::LlamaBenchJsonl),
        Box::new(llama_bench::LlamaBenchCsv),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    pub file: String,
    /// JSON path, or `line L, column C`.
    pub location: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.location, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileStatus {
    Loaded {
        format: &'static str,
        records: usize,
    },
    /// Recognised, holds nothing to import.
    NotImported {
        format: &'static str,
        reason: String,
    },
    /// Not a format silirep knows.
    Unrecognised,
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileOutcome {
    pub file: String,
    pub status: FileStatus,
}

/// Everything loaded from one results directory.
#[derive(Debug, Default)]
pub struct Dataset {
    pub records: Vec<Record>,
    pub machines: BTreeMap<MachineKey, MachineInfo>,
    pub files: Vec<FileOutcome>,
    pub warnings: Vec<Warning>,
    /// silirep's runs by run id (records name theirs in `Record::run_id`).
    pub runs: BTreeMap<String, RunInfo>,
    /// Time series read from capture files, in load order.
    pub captures: Vec<capture::TrafficCapture>,
    /// Every link a machine's measurements crossed, as its driver or OS reported it.
    pub links: BTreeMap<MachineKey, std::collections::BTreeSet<SeenLink>>,
}

/// A link between two of a machine's devices (or the machine and a peer), as a measurement
/// recorded it: `from` and `to` are device ids (`0`, `1`, `host`, `peer`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeenLink {
    pub from: String,
    pub to: String,
    /// `nvlink`, `pcie`, `tcp`, `unified_memory`, `unknown`.
    pub kind: String,
    /// `NV18`, `PCIe gen 5 x16`, `TCP over loopback`.
    pub label: String,
    /// What the driver reported about it, `key=value`.
    pub attributes: Vec<(String, String)>,
}

impl Dataset {
    pub fn failed_files(&self) -> impl Iterator<Item = &FileOutcome> {
        self.files
            .iter()
            .filter(|f| matches!(f.status, FileStatus::Failed { .. }))
    }

    /// Anything `--strict` refuses: a failed file, an unrecognised file, or a warning.
    pub fn problem_count(&self) -> usize {
        let bad_files = self
            .files
            .iter()
            .filter(|f| {
                matches!(
                    f.status,
                    FileStatus::Failed { .. } | FileStatus::Unrecognised
                )
            })
            .count();
        bad_files + self.warnings.len()
    }
}

impl Dataset {
    /// The machine whose label or id is `name` (case-insensitive); otherwise a message naming
    /// the closest, or every machine when none is close. `silirep predict` and `silirep
    /// compare` take machines by name through this.
    pub fn machine_named(&self, name: &str) -> Result<&MachineKey, String> {
        let wanted = name.trim().to_ascii_lowercase();
        if let Some(k) = self
            .machines
            .keys()
            .find(|k| k.label.to_ascii_lowercase() == wanted || k.id.to_ascii_lowercase() == wanted)
        {
            return Ok(k);
        }
        let lowered: Vec<String> = self
            .machines
            .keys()
            .flat_map(|k| [k.label.to_ascii_lowercase(), k.id.clone()])
            .collect();
        let hint = crate::util::did_you_mean(&wanted, lowered.iter().map(String::as_str));
        Err(format!(
            "no machine {name:?} in the results{hint}; the machines are: {}",
            self.machine_list()
        ))
    }

    /// Every machine as `"label" (id)`, for messages.
    pub fn machine_list(&self) -> String {
        self.machines
            .keys()
            .map(|k| format!("{:?} ({})", k.label, k.id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The part of the dataset about `machines`: their records (with each record's index in
    /// `self.records`, so estimates made once can be shared), their descriptions, the files
    /// that hold their records or describe them, and those files' warnings.
    pub fn only_machines(&self, machines: &[MachineKey]) -> (Dataset, Vec<usize>) {
        let wanted: std::collections::BTreeSet<&MachineKey> = machines.iter().collect();
        let mut indices = Vec::new();
        let mut records = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            if wanted.contains(&r.machine) {
                indices.push(i);
                records.push(r.clone());
            }
        }
        let machines: BTreeMap<MachineKey, MachineInfo> = self
            .machines
            .iter()
            .filter(|(k, _)| wanted.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let captures: Vec<capture::TrafficCapture> = self
            .captures
            .iter()
            .filter(|c| c.machines.iter().any(|m| wanted.contains(m)))
            .cloned()
            .collect();
        let mut files_used: std::collections::BTreeSet<&str> =
            records.iter().map(|r| r.source.file.as_str()).collect();
        for info in machines.values() {
            files_used.extend(info.described_by.iter().map(String::as_str));
        }
        files_used.extend(captures.iter().map(|c| c.source.file.as_str()));
        let files = self
            .files
            .iter()
            .filter(|f| files_used.contains(f.file.as_str()))
            .cloned()
            .collect();
        let warnings = self
            .warnings
            .iter()
            .filter(|w| files_used.contains(w.file.as_str()))
            .cloned()
            .collect();
        let runs = self
            .runs
            .iter()
            .filter(|(_, run)| wanted.contains(&run.machine))
            .map(|(id, run)| (id.clone(), run.clone()))
            .collect();
        (
            Dataset {
                links: self
                    .links
                    .iter()
                    .filter(|(k, _)| machines.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                records,
                machines,
                files,
                warnings,
                runs,
                captures,
            },
            indices,
        )
    }
}

/// Errors that stop loading altogether (the results root itself is unusable).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read results directory: {message}")]
    Root { path: PathBuf, message: String },
}

/// Loads every file under `root` in a stable order (sorted by path): JSON files, and text
/// files in a format some [`TextImporter`] recognises.
pub fn load_dir(root: &Path) -> Result<Dataset, LoadError> {
    let meta = std::fs::metadata(root).map_err(|e| LoadError::Root {
        path: root.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut dataset = Dataset::default();
    let mut paths = Vec::new();
    if meta.is_file() {
        paths.push(root.to_path_buf());
    } else {
        // Following links lets users assemble a results tree from symlinked folders; walkdir
        // detects link loops and reports them as errors instead of recursing forever.
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name();
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_file() => paths.push(e.into_path()),
                Ok(_) => {}
                Err(e) => {
                    let path = e
                        .path()
                        .map(|p| relative(root, p))
                        .unwrap_or_else(|| relative(root, root));
                    let message = if e.loop_ancestor().is_some() {
                        "symbolic link loop; not followed".to_string()
                    } else {
                        e.io_error()
                            .map(|io| io.to_string())
                            .unwrap_or_else(|| e.to_string())
                    };
                    dataset.files.push(FileOutcome {
                        file: path,
                        status: FileStatus::Failed { error: message },
                    });
                }
            }
        }
    }
    let base = if meta.is_file() {
        root.parent().unwrap_or(Path::new("."))
    } else {
        root
    };
    let readers = Readers {
        json: importers(),
        text: text_importers(),
    };
    let mut folder_machines: BTreeMap<PathBuf, folders::FolderMachine> = BTreeMap::new();
    for path in &paths {
        let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let machine = folder_machines
            .entry(folder.clone())
            .or_insert_with(|| folders::folder_machine(&folder, base))
            .clone();
        load_file(&readers, base, path, &machine, &mut dataset);
    }
    cross_checks::decode_rates_that_are_prefill(&mut dataset);
    dataset.warnings.sort();
    Ok(dataset)
}

fn is_markdown(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"))
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// `root`-relative path with `/` separators; the root's own name when `path == root`.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if text.is_empty() {
        root.to_string_lossy().into_owned()
    } else {
        text
    }
}

struct Readers {
    json: Vec<Box<dyn Importer>>,
    text: Vec<Box<dyn TextImporter>>,
}

/// Reads one file: JSON (by content, whatever its extension) through the JSON importers,
/// anything else through the text importers. A file that is neither `.json` nor claimed by
/// a format is passed over without a trace, so notes and READMEs beside results are not
/// problems.
fn load_file(
    readers: &Readers,
    base: &Path,
    path: &Path,
    folder_machine: &folders::FolderMachine,
    dataset: &mut Dataset,
) {
    let rel_path = relative(base, path);
    let named_json = is_json(path);
    let fail = |dataset: &mut Dataset, error: String| {
        dataset.files.push(FileOutcome {
            file: rel_path.clone(),
            status: FileStatus::Failed { error },
        })
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail(dataset, format!("cannot read: {e}")),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) if !named_json => return,
        Err(e) => {
            return fail(
                dataset,
                format!(
                    "not UTF-8 text (invalid byte at offset {}): expected a JSON file",
                    e.utf8_error().valid_up_to()
                ),
            );
        }
    };
    // Editors on Windows save UTF-8 with a byte-order mark; it is not part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let looks_like_json = matches!(text.trim_start().chars().next(), Some('{' | '['));
    let parsed = if named_json || looks_like_json {
        Some(json_text::parse(text))
    } else {
        None
    };
    if let Some(Ok(parsed)) = &parsed {
        let view = FileView {
            rel_path: &rel_path,
            file_name: &file_name,
            doc: &parsed.value,
            folder_machine: &folder_machine.key,
            folder_described: folder_machine.described,
        };
        if let Some(importer) = readers.json.iter().find(|i| i.recognises(&view)) {
            for token in &parsed.non_finite {
                dataset.warnings.push(Warning {
                    file: rel_path.clone(),
                    location: format!("line {}, column {}", token.line, token.column),
                    message: format!(
                        "non-finite token {} at {} read as a missing value",
                        token.token, token.path
                    ),
                });
            }
            let mut imported = Imported::default();
            let result = importer.import(&view, &mut imported);
            return finish(dataset, &rel_path, importer.format_name(), result, imported);
        }
    }
    // Markdown is documentation: a README quoting a tool's output must not become results.
    if is_markdown(path) {
        return;
    }
    let view = TextView {
        rel_path: &rel_path,
        file_name: &file_name,
        text,
        folder_machine: &folder_machine.key,
        folder_described: folder_machine.described,
    };
    if let Some(importer) = readers.text.iter().find(|i| i.recognises(&view)) {
        let mut imported = Imported::default();
        let result = importer.import(&view, &mut imported);
        return finish(dataset, &rel_path, importer.format_name(), result, imported);
    }
    if !named_json {
        return;
    }
    match parsed {
        Some(Err(e)) => fail(dataset, format!("invalid JSON at {e}")),
        _ => dataset.files.push(FileOutcome {
            file: rel_path.clone(),
            status: FileStatus::Unrecognised,
        }),
    }
}

/// Files the outcome of one importer's run on one file into the dataset.
fn finish(
    dataset: &mut Dataset,
    rel_path: &str,
    format: &'static str,
    result: Result<(), ImportError>,
    mut imported: Imported,
) {
    match result {
        Ok(()) => {
            let status = match imported.not_imported.take() {
                Some(reason) => FileStatus::NotImported { format, reason },
                None => FileStatus::Loaded {
                    format,
                    records: imported.records.len(),
                },
            };
            dataset.files.push(FileOutcome {
                file: rel_path.to_string(),
                status,
            });
            dataset.records.append(&mut imported.records);
            dataset.warnings.append(&mut imported.warnings);
            for run in imported.runs {
                dataset.runs.insert(run.run_id.clone(), run);
            }
            dataset.captures.append(&mut imported.captures);
            for (key, link) in imported.links {
                dataset.links.entry(key).or_default().insert(link);
            }
            for (key, info) in imported.machines {
                let entry = dataset.machines.entry(key).or_default();
                merge_machine_info(entry, info);
            }
        }
        Err(e) => dataset.files.push(FileOutcome {
            file: rel_path.to_string(),
            status: FileStatus::Failed {
                error: format!("not a valid {format} file: {e}"),
            },
        }),
    }
}

fn merge_machine_info(into: &mut MachineInfo, from: MachineInfo) {
    if into.label.is_empty() {
        into.label = from.label;
    }
    into.cpu_model = into.cpu_model.take().or(from.cpu_model);
    into.cpu_cores = into.cpu_cores.or(from.cpu_cores);
    into.memory_bytes = into.memory_bytes.or(from.memory_bytes);
    into.accelerator = into.accelerator.take().or(from.accelerator);
    into.accelerator_compute_units = into
        .accelerator_compute_units
        .or(from.accelerator_compute_units);
    into.os = into.os.take().or(from.os);
    into.described_by.extend(from.described_by);
    into.described_by.sort();
    into.described_by.dedup();
}

/// Registers machines seen only through their records, so every machine is listed.
pub fn ensure_record_machines(dataset: &mut Dataset) {
    for r in &dataset.records {
        dataset
            .machines
            .entry(r.machine.clone())
            .or_insert_with(|| MachineInfo {
                label: r.machine.label.clone(),
                ..Default::default()
            });
    }
}

/// Makes every machine's label name one machine, so no page reads "X vs X":
/// - one id under several labels (a machine re-labelled between runs) is one machine, shown
///   under the first label in sorted order;
/// - one label on several ids (two unlabelled cloud VMs with the same CPU) becomes
///   `label (id)` on each.
///
/// Each case is a warning naming the ids and labels, so `--strict` refuses it and the user
/// can name the machines (`silirep measure --label`).
pub fn reconcile_machine_labels(dataset: &mut Dataset) {
    let mut renames: BTreeMap<MachineKey, MachineKey> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut labels_by_id: BTreeMap<&str, Vec<&MachineKey>> = BTreeMap::new();
    for key in dataset.machines.keys() {
        labels_by_id.entry(&key.id).or_default().push(key);
    }
    for (id, keys) in &labels_by_id {
        if keys.len() > 1 {
            let kept = keys[0].label.clone();
            let labels: Vec<String> = keys.iter().map(|k| format!("{:?}", k.label)).collect();
            warnings.push((
                (*keys[0]).clone(),
                format!(
                    "machine {id} appears under {} labels ({}); shown as {kept:?}",
                    keys.len(),
                    labels.join(", ")
                ),
            ));
            for k in &keys[1..] {
                renames.insert(
                    (*k).clone(),
                    MachineKey {
                        id: id.to_string(),
                        label: kept.clone(),
                    },
                );
            }
        }
    }
    let renamed = |k: &MachineKey| renames.get(k).cloned().unwrap_or_else(|| k.clone());
    let mut ids_by_label: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for key in dataset.machines.keys().map(renamed) {
        ids_by_label.entry(key.label).or_default().insert(key.id);
    }
    for (label, ids) in &ids_by_label {
        if ids.len() > 1 {
            let ids: Vec<&String> = ids.iter().collect();
            warnings.push((
                MachineKey {
                    id: ids[0].clone(),
                    label: label.clone(),
                },
                format!(
                    "machines {} share the label {label:?}; each is shown as \"{label} (<id>)\" \
                     (name machines with `silirep measure --label`)",
                    ids.iter()
                        .map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let final_key = |k: &MachineKey| {
        let k = renamed(k);
        if ids_by_label.get(&k.label).is_some_and(|ids| ids.len() > 1) {
            MachineKey {
                label: format!("{} ({})", k.label, k.id),
                id: k.id,
            }
        } else {
            k
        }
    };
    if warnings.is_empty() {
        return;
    }
    for (key, message) in warnings {
        let file = dataset
            .machines
            .get(&key)
            .and_then(|info| info.described_by.first().cloned())
            .or_else(|| {
                dataset
                    .records
                    .iter()
                    .find(|r| r.machine == key)
                    .map(|r| r.source.file.clone())
            })
            .unwrap_or_default();
        dataset.warnings.push(Warning {
            file,
            location: "$.machine.label".into(),
            message,
        });
    }
    dataset.warnings.sort();
    for r in &mut dataset.records {
        r.machine = final_key(&r.machine);
    }
    for run in dataset.runs.values_mut() {
        run.machine = final_key(&run.machine);
    }
    for c in &mut dataset.captures {
        for m in &mut c.machines {
            *m = final_key(m);
        }
    }
    let links = std::mem::take(&mut dataset.links);
    for (key, seen) in links {
        dataset
            .links
            .entry(final_key(&key))
            .or_default()
            .extend(seen);
    }
    for c in &mut dataset.captures {
        for m in &mut c.machines {
            *m = final_key(m);
        }
    }
    let machines = std::mem::take(&mut dataset.machines);
    for (key, mut info) in machines {
        let key = final_key(&key);
        info.label = key.label.clone();
        match dataset.machines.get_mut(&key) {
            Some(existing) => merge_machine_info(existing, info),
            None => {
                dataset.machines.insert(key, info);
            }
        }
    }
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

    fn record(machine: MachineKey, file: &str) -> Record {
        let spec = silirep_core::KernelSpec::Gemm {
            m: 64,
            n: 64,
            k: 64,
            dtype: silirep_core::Dtype::F32,
        };
        let mut r = Record::for_tests(machine, spec, vec![1e-3; 5]);
        r.source.file = file.into();
        r
    }

    #[test]
    fn two_machines_with_one_label_are_told_apart_with_a_warning() {
        let xeon = "Intel(R) Xeon(R) Processor";
        let mut d = Dataset::default();
        d.records.push(record(key("vm-a", xeon), "a.json"));
        d.records.push(record(key("vm-b", xeon), "b.json"));
        ensure_record_machines(&mut d);
        reconcile_machine_labels(&mut d);
        let labels: Vec<&str> = d.machines.keys().map(|k| k.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "Intel(R) Xeon(R) Processor (vm-a)",
                "Intel(R) Xeon(R) Processor (vm-b)"
            ]
        );
        assert_eq!(
            d.records[1].machine.label,
            "Intel(R) Xeon(R) Processor (vm-b)"
        );
        assert_eq!(d.warnings.len(), 1);
        assert!(
            d.warnings[0]
                .message
                .contains("machines vm-a, vm-b share the label"),
            "{}",
            d.warnings[0]
        );
    }

    #[test]
    fn one_machine_under_two_labels_is_one_machine() {
        let mut d = Dataset::default();
        d.records.push(record(key("box", "Lab box"), "a.json"));
        d.records.push(record(key("box", "My box"), "b.json"));
        ensure_record_machines(&mut d);
        reconcile_machine_labels(&mut d);
        assert_eq!(d.machines.len(), 1);
        assert!(d.records.iter().all(|r| r.machine == key("box", "Lab box")));
        assert!(d.warnings[0].message.contains("appears under 2 labels"));
        // Distinct labels and ids: nothing to say.
        let mut clean = Dataset::default();
        clean.records.push(record(key("a", "A"), "a.json"));
        clean.records.push(record(key("b", "B"), "b.json"));
        ensure_record_machines(&mut clean);
        reconcile_machine_labels(&mut clean);
        assert!(clean.warnings.is_empty());
    }
}
