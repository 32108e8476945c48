//! silirep's own run files (results schema v1).

use super::record::{MachineKey, Record, Timing};
use super::{FileView, ImportError, Imported, Importer, MachineInfo};
use silirep_core::schema::{RunFile, RunStatus, SCHEMA_NAME, SCHEMA_VERSION, VerificationStatus};

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
        let run: RunFile = serde_path_to_error::deserialize(file.doc).map_err(|e| {
            let path = e.path().to_string();
            ImportError::Invalid {
                path: if path == "." {
                    "$".into()
                } else {
                    format!("$.{path}")
                },
                message: e.into_inner().to_string(),
            }
        })?;
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
                    run.measurements.len()
                ),
            );
        }
        let machine = MachineKey {
            id: run.machine.id.clone(),
            label: run.machine.label.clone(),
        };
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
        for (i, m) in run.measurements.iter().enumerate() {
            let json_path = format!("$.measurements[{i}]");
            if let Some(bad) = m
                .samples_s
                .iter()
                .position(|s| !(s.is_finite() && *s > 0.0))
            {
                return Err(ImportError::Invalid {
                    path: format!("{json_path}.samples_s[{bad}]"),
                    message: format!(
                        "expected a positive number of seconds, found {}",
                        m.samples_s[bad]
                    ),
                });
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
            out.records.push(Record {
                machine: machine.clone(),
                framework: run.backend.name.clone(),
                spec: m.spec.clone(),
                timing,
                verification: match m.verification.status {
                    VerificationStatus::Passed => "passed",
                    VerificationStatus::Failed => "failed",
                    VerificationStatus::NotRun => "not_run",
                }
                .to_string(),
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
