//! Which machine a folder of result files belongs to, for files that do not say it
//! themselves (other tools' files; silirep's own runs name their machine inside).

use super::record::MachineKey;
use crate::util::slug;
use std::path::Path;

/// The machine of a folder, and whether a file in it described that machine (a
/// `system_info.json` or a silirep run) or only the folder's name was there to go by. Tools
/// whose files name their own host (nccl-tests, iperf3, llama-bench) use the folder's machine
/// only when it was described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderMachine {
    pub key: MachineKey,
    pub described: bool,
}

/// The machine a folder's files belong to: from its `system_info.json` when it has a
/// readable one, else from a silirep run in it (the first in name order), else the folder's
/// name.
pub fn folder_machine(folder: &Path, root: &Path) -> FolderMachine {
    let info = std::fs::read_to_string(folder.join("system_info.json"))
        .ok()
        .and_then(|text| super::json_text::parse(&text).ok())
        .and_then(|parsed| super::mac_ml_benchmark::system_info::machine_key(&parsed.value));
    if let Some(key) = info.or_else(|| run_in_folder(folder)) {
        return FolderMachine {
            key,
            described: true,
        };
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
    FolderMachine {
        key: MachineKey {
            id: slug(&name),
            label: name,
        },
        described: false,
    }
}

/// The machine of the first silirep run file in `folder` (sorted by name), if any.
fn run_in_folder(folder: &Path) -> Option<MachineKey> {
    let mut names: Vec<_> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        })
        .collect();
    names.sort();
    names.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        // A run names its schema in its first lines; skip other JSON without parsing it.
        if !text.contains(silirep_core::schema::SCHEMA_NAME) {
            return None;
        }
        let parsed = super::json_text::parse(&text).ok()?;
        super::native::run_machine_key(&parsed.value)
    })
}
