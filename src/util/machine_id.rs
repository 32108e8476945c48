//! The rule that names a machine: `<accelerator or CPU slug>-<8 hex digits>`.
//!
//! The name leads with what does the work — the accelerator where there is one, else the CPU —
//! so a results folder reads `nvidia-h200-…` rather than the host's CPU. The digits hash the
//! host's identity (the OS's machine id or platform UUID) and CPU model and, where there is an
//! accelerator, the host's thread count and memory and the accelerator's model and the set of
//! devices used. The host identity alone is not enough: every container built from one image
//! shares `/etc/machine-id`, so two cloud hosts with different GPUs looked like one machine
//! until the accelerator became part of the id. A machine without an accelerator keeps the id
//! it always had (host identity and CPU model), so its history continues across versions of
//! silirep.
//!
//! Files written before that rule carry an id without the accelerator; [`upgraded_id`] maps
//! them to a new-style id at load time (deterministically, from the old id and the
//! accelerator's name), so old files keep loading and machines that differ in accelerator
//! stay apart.

use super::{fnv1a64, slug};

/// What the id is computed from; everything optional is left out of the hash when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineFacts<'a> {
    /// `/etc/machine-id`, the platform UUID, or the host name: whatever the OS offers.
    pub host_identity: &'a str,
    pub cpu_model: &'a str,
    pub cpu_threads: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// The accelerator's model, e.g. `NVIDIA H200`.
    pub accelerator: Option<&'a str>,
    /// The devices used where a backend drives several (e.g. `0,1`); `None` for one.
    pub devices: Option<&'a str>,
}

/// Longest slug kept in an id: long enough to read, short enough for a folder name.
const SLUG_CHARS: usize = 40;

pub fn machine_id(facts: &MachineFacts) -> String {
    let Some(accelerator) = facts.accelerator else {
        return with_hash(
            facts.cpu_model,
            fnv1a64(format!("{}|{}", facts.host_identity, facts.cpu_model).as_bytes()),
        );
    };
    // Memory is hashed in whole GiB: the kernel's MemTotal moves by megabytes between boots
    // of the same machine, which must not rename it.
    let memory_gib = facts
        .memory_bytes
        .map(|b| (b as f64 / (1u64 << 30) as f64).round().to_string())
        .unwrap_or_default();
    let hashed = format!(
        "{}|{}|{}|{}|{}|{}",
        facts.host_identity,
        facts.cpu_model,
        facts.cpu_threads.map(|t| t.to_string()).unwrap_or_default(),
        memory_gib,
        accelerator,
        facts.devices.unwrap_or(""),
    );
    with_hash(accelerator, fnv1a64(hashed.as_bytes()))
}

/// A new-style id for a file written before accelerators were part of the id, or `None`
/// when `id` already names its accelerator (or there is none).
pub fn upgraded_id(id: &str, accelerator: Option<&str>) -> Option<String> {
    let accelerator = accelerator.filter(|a| !a.trim().is_empty())?;
    let lead = truncated_slug(accelerator);
    if id.starts_with(&format!("{lead}-")) {
        return None;
    }
    Some(with_hash(
        accelerator,
        fnv1a64(format!("{id}|{accelerator}").as_bytes()),
    ))
}

fn truncated_slug(text: &str) -> String {
    let slug: String = slug(text).chars().take(SLUG_CHARS).collect();
    slug.trim_end_matches('-').to_string()
}

fn with_hash(lead: &str, hash: u64) -> String {
    let lead = match truncated_slug(lead) {
        s if s.is_empty() => "machine".to_string(),
        s => s,
    };
    format!("{lead}-{:08x}", hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent_host(accelerator: Option<&'static str>) -> MachineFacts<'static> {
        // Two lent GPU hosts built from one image: same machine-id, same CPU, same memory.
        MachineFacts {
            host_identity: "3f2a9c0e5b7d4e1f8a6b2c4d0e9f1a3b",
            cpu_model: "Intel(R) Xeon(R) Processor",
            cpu_threads: Some(16),
            memory_bytes: Some(128 << 30),
            accelerator,
            devices: None,
        }
    }

    #[test]
    fn hosts_sharing_an_image_differ_by_accelerator_and_are_named_after_it() {
        let h100 = machine_id(&lent_host(Some("NVIDIA H100 80GB HBM3")));
        let h200 = machine_id(&lent_host(Some("NVIDIA H200")));
        assert_ne!(h100, h200);
        assert!(h100.starts_with("nvidia-h100-80gb-hbm3-"), "{h100}");
        assert!(h200.starts_with("nvidia-h200-"), "{h200}");
        // Stable: the same facts give the same id.
        assert_eq!(h200, machine_id(&lent_host(Some("NVIDIA H200"))));
    }

    #[test]
    fn the_device_set_and_the_host_shape_are_part_of_the_id() {
        let one = machine_id(&lent_host(Some("NVIDIA H200")));
        let two = machine_id(&MachineFacts {
            devices: Some("0,1"),
            ..lent_host(Some("NVIDIA H200"))
        });
        assert_ne!(one, two);
        let bigger_host = machine_id(&MachineFacts {
            cpu_threads: Some(32),
            ..lent_host(Some("NVIDIA H200"))
        });
        assert_ne!(one, bigger_host);
        // A few megabytes of MemTotal between boots do not rename the machine.
        let rebooted = machine_id(&MachineFacts {
            memory_bytes: Some((128 << 30) - (3 << 20)),
            ..lent_host(Some("NVIDIA H200"))
        });
        assert_eq!(one, rebooted);
    }

    #[test]
    fn cpu_only_machines_keep_the_id_they_always_had() {
        let id = machine_id(&lent_host(None));
        assert!(id.starts_with("intel-r-xeon-r-processor-"), "{id}");
        assert_eq!(id.len(), "intel-r-xeon-r-processor-".len() + 8);
        // The first rule: FNV-1a of "host identity|CPU model", low 32 bits. This is the
        // committed CPU run's id (results/raw/amd-epyc-35c1aed4), from its host's machine-id.
        let vm = MachineFacts {
            host_identity: "3d1219c7c4c5404aaa1f6d2a48adfda4",
            cpu_model: "AMD EPYC",
            cpu_threads: Some(2),
            memory_bytes: Some(24 << 30),
            accelerator: None,
            devices: None,
        };
        assert_eq!(machine_id(&vm), "amd-epyc-35c1aed4");
    }

    #[test]
    fn old_ids_without_their_accelerator_are_upgraded_apart() {
        let old = "intel-r-xeon-r-processor-f9a07ede";
        let h100 = upgraded_id(old, Some("NVIDIA H100 80GB HBM3")).unwrap();
        let h200 = upgraded_id(old, Some("NVIDIA H200")).unwrap();
        assert_ne!(h100, h200);
        assert!(h100.starts_with("nvidia-h100-80gb-hbm3-"), "{h100}");
        // New-style ids, CPU-only machines and blank accelerators are left alone.
        assert_eq!(upgraded_id(&h200, Some("NVIDIA H200")), None);
        assert_eq!(upgraded_id(old, None), None);
        assert_eq!(upgraded_id(old, Some("  ")), None);
    }
}
