//! Writing a report directory safely: every file is produced in memory first, then either
//! compared with what is on disk (`--check`) or written atomically (temp file + rename).
//! Paths are relative, built by silirep itself, and checked so nothing lands outside `-o`.
//!
//! The directory keeps a manifest ([`MANIFEST`]) of the files silirep wrote there. A file a
//! previous report wrote and this one does not (a chart of a machine since removed, an
//! analysis renamed) is deleted on write and listed by `--check`; files silirep did not write
//! are never touched.

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

/// The list of files the last report wrote into its directory, one relative path per line.
pub const MANIFEST: &str = ".silirep-report-files";

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

    /// Files whose contents on disk differ from ours (or are missing), sorted, then the files
    /// an earlier report wrote that this one would remove (marked `(to be removed)`).
    pub fn stale_files(&self, dir: &Path) -> Vec<String> {
        let mut stale: Vec<String> = self
            .changed_files(dir)
            .into_iter()
            .filter(|rel| rel != MANIFEST)
            .collect();
        stale.extend(
            self.orphans(dir)
                .into_iter()
                .map(|rel| format!("{rel} (to be removed)")),
        );
        stale
    }

    fn changed_files(&self, dir: &Path) -> Vec<String> {
        self.files
            .iter()
            .filter(|(rel, contents)| {
                std::fs::read(dir.join(rel)).map_or(true, |on_disk| &on_disk != *contents)
            })
            .map(|(rel, _)| rel.clone())
            .collect()
    }

    /// Files the previous report's manifest lists that this report does not produce and that
    /// are still on disk.
    fn orphans(&self, dir: &Path) -> Vec<String> {
        let Ok(previous) = std::fs::read_to_string(dir.join(MANIFEST)) else {
            return Vec::new();
        };
        let mut orphans: Vec<String> = previous
            .lines()
            .filter(|rel| !rel.is_empty() && !self.files.contains_key(*rel))
            // Only paths this module would itself have written: a hand-edited manifest must
            // not make silirep delete anything outside the directory.
            .filter(|rel| {
                Path::new(rel)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            })
            .filter(|rel| dir.join(rel).is_file())
            .map(str::to_string)
            .collect();
        orphans.sort();
        orphans.dedup();
        orphans
    }

    fn with_manifest(&self) -> OutputSet {
        let mut listed: String = self
            .files
            .keys()
            .filter(|rel| rel.as_str() != MANIFEST)
            .map(|rel| format!("{rel}\n"))
            .collect();
        if listed.is_empty() {
            listed.push('\n');
        }
        let mut files = self.files.clone();
        files.insert(MANIFEST.to_string(), listed.into_bytes());
        OutputSet { files }
    }

    /// Writes every file under `dir`, each atomically, skipping files already identical;
    /// removes the files an earlier report wrote that this one does not; updates the
    /// manifest last. Returns how many report files were written or removed.
    pub fn write_all(&self, dir: &Path) -> Result<usize, OutputError> {
        let io = |path: &Path, e: std::io::Error| OutputError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let orphans = self.orphans(dir);
        let all = self.with_manifest();
        let mut written = 0;
        let mut changed = all.changed_files(dir);
        // The manifest goes last, so an interrupted write leaves the old list (a superset of
        // what is on disk) rather than one that forgets files.
        changed.sort_by_key(|rel| rel == MANIFEST);
        for rel in changed {
            let target = dir.join(&rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            write_atomically(&target, &all.files[&rel]).map_err(|e| io(&target, e))?;
            if rel != MANIFEST {
                written += 1;
            }
        }
        for rel in orphans {
            let target = dir.join(&rel);
            std::fs::remove_file(&target).map_err(|e| io(&target, e))?;
            written += 1;
            // Leave no empty folders behind (a removed analysis's `charts/`).
            let mut parent = target.parent();
            while let Some(p) = parent.filter(|p| *p != dir) {
                if std::fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
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

    #[test]
    fn files_an_earlier_report_wrote_are_removed_and_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = OutputSet::default();
        first.add("index.md", b"a".to_vec()).unwrap();
        first.add("old/charts/x.svg", b"<svg/>".to_vec()).unwrap();
        first.write_all(dir.path()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let mut second = OutputSet::default();
        second.add("index.md", b"a".to_vec()).unwrap();
        assert_eq!(
            second.stale_files(dir.path()),
            vec!["old/charts/x.svg (to be removed)".to_string()]
        );
        assert_eq!(second.write_all(dir.path()).unwrap(), 1);
        assert!(!dir.path().join("old").exists(), "empty folders left");
        assert!(
            dir.path().join("notes.txt").is_file(),
            "a file silirep did not write"
        );
        assert!(second.stale_files(dir.path()).is_empty());
        // A manifest pointing outside the directory deletes nothing.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let escape = format!(
            "../{}/keep\n",
            outside.path().file_name().unwrap().to_string_lossy()
        );
        std::fs::write(dir.path().join(MANIFEST), escape).unwrap();
        second.write_all(dir.path()).unwrap();
        assert!(outside.path().join("keep").is_file());
    }
}
