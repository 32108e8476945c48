//! silirep's own run files (results schema v1).

use super::record::{MachineKey, Record, Timing, Verification};
use super::{FileView, ImportError, Imported, Importer, MachineInfo};
use silirep_core::schema::{
    Measurement, RunFile, RunStatus, SCHEMA_NAME, SCHEMA_VERSION, VerificationStatus,
};

pub struct NativeRun;

impl Importer for NativeRun {
    fn format_name(&self) -> &'static str {
        "silirep run v1"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("schema").and_then(|s| s.as_str()) == Some(SCHEMA_NAME)
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let version = file.doc.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            return Err(ImportError::Invalid {
                path: "$.schema_version".into(),
                message: format!(
                    "expected {SCHEMA_VERSION} (the version this silirep reads), found {}",
                    file.doc
                        .get("schema_version")
                        .map(super::node::describe)
                        .unwrap_or_else(|| "nothing (missing)".into())
                ),
            });
        }
        // The run's header is read whole; its measurements one by one below, so one invalid
        // measurement costs that measurement (with a warning naming it), not the file.
        let mut header_doc = file.doc.clone();
        let measurement_docs = match header_doc.get_mut("measurements") {
            Some(serde_json::Value::Array(items)) => std::mem::take(items),
            _ => Vec::new(),
        };
        let run: RunFile = deserialize_at("$", &header_doc)?;
        if run.status == RunStatus::Running {
            // `running` in a file nobody is writing means the process died mid-run: every
            // finished measurement is kept, but the run is not the whole suite it set out
            // to be, which `--strict` must not accept silently.
            out.warn(
                file,
                "$.status",
                format!(
                    "incomplete run: status is \"running\" (the measuring process stopped \
                     before finishing, or is still going); its {} finished measurement(s) are kept",
                    measurement_docs.len()
                ),
            );
        }
        let machine = machine_key(&run.machine);
        let os = format!("{} {}", run.machine.os.name, run.machine.os.version);
        out.machines.push((
            machine.clone(),
            MachineInfo {
                label: run.machine.label.clone(),
                cpu_model: Some(run.machine.cpu.model.clone()),
                cpu_cores: run.machine.cpu.cores.map(u64::from),
                memory_bytes: run.machine.memory_bytes,
                accelerator: run.machine.accelerator.as_ref().map(|a| a.name.clone()),
                accelerator_compute_units: run
                    .machine
                    .accelerator
                    .as_ref()
                    .and_then(|a| a.compute_units.map(u64::from)),
                os: Some(os.trim().to_string()),
                described_by: vec![file.rel_path.to_string()],
            },
        ));
        for (i, doc) in measurement_docs.iter().enumerate() {
            let json_path = format!("$.measurements[{i}]");
            let m: Measurement = match deserialize_at(&json_path, doc) {
                Ok(m) => m,
                Err(ImportError::Invalid { path, message }) => {
                    out.warn(file, &path, format!("measurement dropped: {message}"));
                    continue;
                }
                Err(e) => {
                    out.warn(file, &json_path, format!("measurement dropped: {e}"));
                    continue;
                }
            };
            if let Some(bad) = m
                .samples_s
                .iter()
                .position(|s| !(s.is_finite() && *s > 0.0))
            {
                out.warn(
                    file,
                    &format!("{json_path}.samples_s[{bad}]"),
                    format!(
                        "measurement dropped: expected a positive number of seconds, found {}",
                        sample_text(m.samples_s[bad])
                    ),
                );
                continue;
            }
            let timing = (m.error.is_none() && !m.samples_s.is_empty())
                .then(|| Timing::Samples(m.samples_s.clone()));
            if m.error.is_none() && m.samples_s.is_empty() {
                out.warn(
                    file,
                    &json_path,
                    "measurement has neither samples nor an error",
                );
            }
            for link in m.topology.iter().flat_map(|t| &t.links) {
                out.links.push((
                    machine.clone(),
                    super::SeenLink {
                        from: link.from.clone(),
                        to: link.to.clone(),
                        kind: link.kind.clone(),
                        label: link.label.clone(),
                        attributes: link
                            .attributes
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    },
                ));
            }
            out.records.push(Record {
                machine: machine.clone(),
                framework: run.backend.name.clone(),
                spec: m.spec.clone(),
                timing,
                verification: match m.verification.status {
                    VerificationStatus::Passed => Verification::Passed,
                    VerificationStatus::Failed => Verification::Failed,
                    VerificationStatus::NotRun => Verification::NotRun,
                },
                error: m
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", error_kind_name(e.kind), e.message)),
                run_id: Some(run.run_id.clone()),
                source: file.provenance(&json_path),
                notes: Vec::new(),
                clock: clock_while_timed(&m.details),
                reported: Default::default(),
            });
        }
        Ok(())
    }
}

/// Deserialises `doc`, naming the JSON path below `base` where it fails.
fn deserialize_at<T: serde::de::DeserializeOwned>(
    base: &str,
    doc: &serde_json::Value,
) -> Result<T, ImportError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        ImportError::Invalid {
            path: if path == "." {
                base.to_string()
            } else {
                format!("{base}.{path}")
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// The machine a silirep run file names, or `None` when `doc` is not a readable run: lets
/// other tools' files in the same folder join that machine.
pub fn run_machine_key(doc: &serde_json::Value) -> Option<MachineKey> {
    if doc.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA_NAME) {
        return None;
    }
    let machine: silirep_core::schema::Machine =
        serde_json::from_value(doc.get("machine")?.clone()).ok()?;
    Some(machine_key(&machine))
}

/// The machine as reports know it. Files written before accelerators were part of machine
/// ids get the new-style id (see [`crate::util::machine_id`]), so an H100 and an H200 host
/// built from one image stay two machines.
fn machine_key(machine: &silirep_core::schema::Machine) -> MachineKey {
    let accelerator = machine.accelerator.as_ref().map(|a| a.name.as_str());
    MachineKey {
        id: crate::util::machine_id::upgraded_id(&machine.id, accelerator)
            .unwrap_or_else(|| machine.id.clone()),
        label: machine.label.clone(),
    }
}

/// Says what is wrong with a sample in words a user recognises.
fn sample_text(sample: f64) -> String {
    if sample < 0.0 {
        format!("{sample} (negative)")
    } else if sample == 0.0 {
        "0".into()
    } else {
        sample.to_string()
    }
}

/// `1245 MHz, software power cap` from the CUDA backend's telemetry details (`sm_clock_mhz`
/// is `median 1245, range …`; `clock_limited_by` names the limits or says `nothing …`).
/// `None` when the run recorded no clock.
fn clock_while_timed(details: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let median = details
        .get("sm_clock_mhz")?
        .strip_prefix("median ")?
        .split(',')
        .next()?
        .trim()
        .parse::<u32>()
        .ok()?;
    Some(match details.get("clock_limited_by") {
        Some(limits) if !limits.starts_with("nothing") => format!("{median} MHz, {limits}"),
        _ => format!("{median} MHz"),
    })
}

fn error_kind_name(kind: silirep_core::schema::ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::clock_while_timed;
    use std::collections::BTreeMap;

    fn details(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn clock_reads_the_median_and_names_real_limits_only() {
        let capped = details(&[
            (
                "sm_clock_mhz",
                "median 1245, range 1230–1410 (5 readings while timed)",
            ),
            ("clock_limited_by", "software power cap"),
        ]);
        assert_eq!(
            clock_while_timed(&capped).as_deref(),
            Some("1245 MHz, software power cap")
        );
        let free = details(&[
            (
                "sm_clock_mhz",
                "median 1980, range 1980–1980 (1 reading while timed)",
            ),
            ("clock_limited_by", "nothing (no limiting reason reported)"),
        ]);
        assert_eq!(clock_while_timed(&free).as_deref(), Some("1980 MHz"));
        // CPU runs and files from before telemetry have no clock; garbage is not one either.
        assert_eq!(clock_while_timed(&details(&[])), None);
        assert_eq!(
            clock_while_timed(&details(&[("sm_clock_mhz", "fast")])),
            None
        );
    }
}
