//! Datasheet peaks (vendor FLOP/s per dtype, memory bandwidth, memory capacity) for MFU/MBU and
//! theoretical roofs, and datasheet link bandwidths (NVLink, PCIe, Thunderbolt) for the link roof
//! of machines that measured none. Built in for common chips; `--catalog FILE` adds or overrides
//! entries. A figure from here is always shown as a datasheet figure, never as a measurement.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const BUILT_IN: &str = include_str!("datasheets.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datasheet {
    pub name: String,
    /// Case-insensitive substrings of a machine's label or accelerator name.
    #[serde(rename = "match")]
    pub patterns: Vec<String>,
    /// Per dtype name (`f32`, `f16`, ...).
    #[serde(default)]
    pub peak_flops_per_s: BTreeMap<String, f64>,
    pub bandwidth_bytes_per_s: Option<f64>,
    /// The machine's links by name (entries of the catalog's `links`), fastest first.
    #[serde(default)]
    pub links: Vec<String>,
    /// The accelerator's own memory (an NVIDIA GPU's HBM), where the host's memory is not what
    /// a model must fit in.
    #[serde(default)]
    pub memory_capacity_bytes: Option<f64>,
    pub source: String,
}

/// A link as its specification states it: bandwidth per direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkDatasheet {
    pub name: String,
    pub bandwidth_bytes_per_s: f64,
    /// Whether the link can join two machines (PCIe, through a network card or a cable;
    /// Thunderbolt), or only devices inside one (NVLink).
    pub between_hosts: bool,
    pub source: String,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    datasheets: Vec<Datasheet>,
    #[serde(default)]
    links: Vec<LinkDatasheet>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Datasheet>,
    links: Vec<LinkDatasheet>,
}

impl Catalog {
    pub fn built_in() -> Catalog {
        let file: CatalogFile =
            serde_json::from_str(BUILT_IN).expect("the built-in datasheet catalog is valid JSON");
        Catalog {
            entries: file.datasheets,
            links: file.links,
        }
    }

    /// The built-in catalog plus a user's file; the user's entries win on equal names.
    pub fn with_user_file(path: &Path) -> Result<Catalog> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read datasheet catalog", path.display()))?;
        let file: CatalogFile = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_str(&text),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: not a datasheet catalog: at {}: {} (expected {{\"datasheets\": [{{\"name\", \"match\", \"peak_flops_per_s\", \"bandwidth_bytes_per_s\", \"source\"}}]}})",
                path.display(),
                e.path(),
                e.inner()
            )
        })?;
        let mut catalog = Catalog::built_in();
        for entry in file.datasheets {
            catalog.entries.retain(|e| e.name != entry.name);
            catalog.entries.push(entry);
        }
        for link in file.links {
            catalog.links.retain(|l| l.name != link.name);
            catalog.links.push(link);
        }
        Ok(catalog)
    }

    /// The entry whose longest matching pattern is longest ("apple m4 pro" beats
    /// "apple m4" for an M4 Pro).
    pub fn find(&self, label: &str, accelerator: Option<&str>) -> Option<Datasheet> {
        let haystacks: Vec<String> = std::iter::once(label)
            .chain(accelerator)
            .map(|s| s.to_ascii_lowercase())
            .collect();
        self.entries
            .iter()
            .filter_map(|e| {
                let longest = e
                    .patterns
                    .iter()
                    .map(|p| p.to_ascii_lowercase())
                    .filter(|p| haystacks.iter().any(|h| matches_word(h, p)))
                    .map(|p| p.len())
                    .max()?;
                Some((longest, e))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, e)| e.clone())
    }

    /// The link called `name` (exact, case-insensitive).
    pub fn link(&self, name: &str) -> Option<&LinkDatasheet> {
        self.links
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name.trim()))
    }

    /// A machine's datasheet links, in the order its entry lists them (fastest first); names
    /// the catalog does not define are skipped.
    pub fn machine_links(&self, datasheet: &Datasheet) -> Vec<&LinkDatasheet> {
        datasheet
            .links
            .iter()
            .filter_map(|name| self.link(name))
            .collect()
    }
}

/// `pattern` occurs in `text` and is not followed by a letter or digit, so "apple m1" does
/// not match "apple m10".
fn matches_word(text: &str, pattern: &str) -> bool {
    text.match_indices(pattern).any(|(i, _)| {
        text[i + pattern.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_entry_wins() {
        let c = Catalog::built_in();
        assert_eq!(c.find("Apple M4 Pro", None).unwrap().name, "Apple M4 Pro");
        assert_eq!(c.find("Apple M4", None).unwrap().name, "Apple M4");
        assert_eq!(
            c.find("Apple M5", Some("Apple M5"))
                .unwrap()
                .bandwidth_bytes_per_s,
            Some(153e9)
        );
        let h100 = c.find("Lab box", Some("NVIDIA H100 80GB HBM3")).unwrap();
        assert_eq!(h100.name, "NVIDIA H100 SXM5 80GB");
        assert_eq!(h100.peak_flops_per_s["bf16"], 989.4e12);
        assert!(c.find("AMD EPYC", None).is_none());
    }

    #[test]
    fn links_are_per_direction_and_named_by_machines() {
        let c = Catalog::built_in();
        let h100 = c.find("Lab box", Some("NVIDIA H100 80GB HBM3")).unwrap();
        let links = c.machine_links(&h100);
        assert_eq!(links[0].name, "NVLink 4");
        assert_eq!(links[0].bandwidth_bytes_per_s, 450e9);
        assert!(!links[0].between_hosts);
        assert_eq!(links[1].name, "PCIe 5.0 x16");
        assert_eq!(h100.memory_capacity_bytes, Some(80e9));
        let m4 = c.find("Apple M4 Pro", None).unwrap();
        assert_eq!(c.machine_links(&m4)[0].name, "Thunderbolt 5");
        let m5 = c.find("Apple M5", None).unwrap();
        assert_eq!(c.machine_links(&m5)[0].bandwidth_bytes_per_s, 5e9);
        assert_eq!(
            c.link("pcie 4.0 x16").unwrap().bandwidth_bytes_per_s,
            31.5e9
        );
        // Every link a machine names exists: a typo would silently drop a link roof.
        for entry in &c.entries {
            for name in &entry.links {
                assert!(
                    c.link(name).is_some(),
                    "{}: unknown link {name}",
                    entry.name
                );
            }
        }
    }

    #[test]
    fn user_file_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"datasheets": [{"name": 3}]}"#).unwrap();
        let e = Catalog::with_user_file(&path).unwrap_err().to_string();
        assert!(e.contains("datasheets[0].name"), "{e}");
        std::fs::write(
            &path,
            r#"{"datasheets": [{"name": "Apple M5", "match": ["apple m5"], "peak_flops_per_s": {"f16": 1e13}, "bandwidth_bytes_per_s": 1.5e11, "source": "mine"}]}"#,
        )
        .unwrap();
        let c = Catalog::with_user_file(&path).unwrap();
        assert_eq!(c.find("Apple M5", None).unwrap().source, "mine");
    }
}
