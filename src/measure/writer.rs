//! Keeps the run file on disk current: rewritten atomically after every configuration, so
//! the file is always a complete, valid run — never half-written, never another run's file.

use crate::render::output::write_atomically;
use anyhow::{Context, Result, bail};
use silirep_core::RunFile;
use std::path::{Path, PathBuf};

pub struct RunWriter {
    path: PathBuf,
}

impl RunWriter {
    /// Reserves `<out>/raw/<machine id>/<run id>.json`; fails rather than overwrite a file.
    pub fn create(out: &Path, run: &RunFile) -> Result<RunWriter> {
        let dir = out.join("raw").join(&run.machine.id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating results directory {}", dir.display()))?;
        let path = dir.join(format!("{}.json", run.run_id));
        // create_new is atomic: two runs can never claim the same file.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!(
                    "{} already exists; refusing to overwrite a run",
                    path.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        let writer = RunWriter { path };
        writer.write(run)?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, run: &RunFile) -> Result<()> {
        let mut text = serde_json::to_string_pretty(run)?;
        text.push('\n');
        write_atomically(&self.path, text.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::schema::{BackendInfo, Machine, RunStatus, Settings, Tool};

    fn run() -> RunFile {
        RunFile {
            schema: silirep_core::schema::SCHEMA_NAME.into(),
            schema_version: silirep_core::schema::SCHEMA_VERSION,
            run_id: "box-20260101T000000Z-0001".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            status: RunStatus::Running,
            tool: Tool {
                name: "silirep".into(),
                version: "test".into(),
            },
            machine: Machine {
                id: "box".into(),
                ..Default::default()
            },
            backend: BackendInfo::default(),
            settings: Settings::default(),
            measurements: vec![],
        }
    }

    #[test]
    fn never_overwrites_an_existing_run() {
        let dir = tempfile::tempdir().unwrap();
        let w = RunWriter::create(dir.path(), &run()).unwrap();
        assert!(w.path().ends_with("raw/box/box-20260101T000000Z-0001.json"));
        let text = std::fs::read_to_string(w.path()).unwrap();
        assert!(serde_json::from_str::<RunFile>(&text).is_ok());
        let err = RunWriter::create(dir.path(), &run())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
    }
}
