//! `system_info.json`: the machine a folder's files were measured on.
//!
//! system_info.json

use super::*;

pub(super) struct SystemInfo;

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
        let key = machine_key(file.doc).ok_or_else(|| chip.error("a chip description"))?;
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

/// The machine a `system_info.json` describes: its chip's brand string (and model
/// identifier, which tells two machines of one chip apart).
pub fn machine_key(doc: &serde_json::Value) -> Option<MachineKey> {
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
