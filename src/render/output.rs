//! Writing a report directory safely: every file is produced in memory first, then either
//! compared with what is on disk (`--check`) or written atomically (temp file + rename).
//! Paths are relative, built by silirep itself, and checked so nothing lands outside `-o`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Default)]
pub struct OutputSet {
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("refusing to write {0:?}: output paths must stay inside the output directory")]
    Escapes(String),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

impl OutputSet {
    pub fn add(&mut self, rel_path: &str, contents: Vec<u8>) -> Result<(), OutputError> {
        let path = Path::new(rel_path);
        let safe =
            !rel_path.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(OutputError::Escapes(rel_path.to_string()));
        }
        self.files.insert(rel_path.to_string(), contents);
        Ok(())
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn get(&self, rel_path: &str) -> Option<&[u8]> {
        self.files.get(rel_path).map(Vec::as_slice)
    }

    /// Files whose contents on disk differ from ours (or are missing), sorted.
    pub fn stale_files(&self, dir: &Path) -> Vec<String> {
        self.files
            .iter()
            .filter(|(rel, contents)| {
                std::fs::read(dir.join(rel)).map_or(true, |on_disk| &on_disk != *contents)
            })
            .map(|(rel, _)| rel.clone())
            .collect()
    }

    /// Writes every file under `dir`, each atomically, skipping files already identical.
    pub fn write_all(&self, dir: &Path) -> Result<usize, OutputError> {
        let io = |path: &Path, e: std::io::Error| OutputError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut written = 0;
        for rel in self.stale_files(dir) {
            let target = dir.join(&rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            write_atomically(&target, &self.files[&rel]).map_err(|e| io(&target, e))?;
            written += 1;
        }
        Ok(written)
    }
}

/// Writes to a temporary file beside `target`, then renames it over `target`: readers see
/// the old file or the new one, never half of one.
pub fn write_atomically(target: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        let mut set = OutputSet::default();
        assert!(set.add("../x.md", vec![]).is_err());
        assert!(set.add("/etc/passwd", vec![]).is_err());
        assert!(set.add("a/../../b", vec![]).is_err());
        assert!(set.add("", vec![]).is_err());
        assert!(set.add("charts/roofline.svg", vec![]).is_ok());
    }

    #[test]
    fn check_then_write_then_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = OutputSet::default();
        set.add("index.md", b"# hi\n".to_vec()).unwrap();
        set.add("charts/a.svg", b"<svg/>".to_vec()).unwrap();
        assert_eq!(set.stale_files(dir.path()).len(), 2);
        assert_eq!(set.write_all(dir.path()).unwrap(), 2);
        assert!(set.stale_files(dir.path()).is_empty());
        std::fs::write(dir.path().join("index.md"), "changed").unwrap();
        assert_eq!(set.stale_files(dir.path()), vec!["index.md".to_string()]);
        // No temporary files are left behind.
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
