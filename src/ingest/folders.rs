//! Which machine a folder of result files belongs to, for files that do not say it
//! themselves (other tools' files; silirep's own runs name their machine inside).

use super::record::MachineKey;
use crate::util::slug;
use std::path::Path;

/// The machine a folder's files belong to: from its `system_info.json` when it has a
/// readable one, else the folder's name.
pub fn folder_machine(folder: &Path, root: &Path) -> MachineKey {
    let info = std::fs::read_to_string(folder.join("system_info.json"))
        .ok()
        .and_then(|text| super::json_text::parse(&text).ok())
        .and_then(|parsed| super::mac_ml_benchmark::system_info::machine_key(&parsed.value));
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
