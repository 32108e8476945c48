//! What machine this is: CPU, caches, memory, OS, and a stable id.
//!
//! Linux reads /proc and sysfs; macOS asks `sysctl` (chip name such as "Apple M4 Pro",
//! performance and efficiency core counts). Anything unreadable stays `None` — a missing
//! fact is better than a wrong one. The machine's id is named by [`crate::util::machine_id`]
//! once the backend has said which accelerator it drives ([`assign_machine_id`]).

use crate::util::machine_id::{MachineFacts, machine_id};
use silirep_core::schema::{Cpu, Machine, Os};
use std::collections::BTreeMap;
use std::process::Command;

/// This host, without an accelerator; call [`assign_machine_id`] after setting one.
pub fn describe_machine() -> Machine {
    let cpu = describe_cpu();
    let os = describe_os();
    let memory_bytes = silirep_cpu::memory_bytes();
    let mut machine = Machine {
        id: String::new(),
        label: cpu.model.clone(),
        cpu,
        memory_bytes,
        os,
        accelerator: None,
    };
    assign_machine_id(&mut machine);
    machine
}

/// Names the machine from everything that tells it apart, accelerator included. Backends that
/// drive several devices list them in the accelerator's `devices` detail (e.g. `0,1`).
pub fn assign_machine_id(machine: &mut Machine) {
    let host = host_identity();
    let accelerator = machine.accelerator.as_ref();
    machine.id = machine_id(&MachineFacts {
        host_identity: &host,
        cpu_model: &machine.cpu.model,
        cpu_threads: machine.cpu.threads,
        memory_bytes: machine.memory_bytes,
        accelerator: accelerator.map(|a| a.name.as_str()),
        devices: accelerator.and_then(|a| a.details.get("devices").map(String::as_str)),
    });
}

/// The OS's machine id, else the platform UUID (macOS), else the host name: it survives
/// reboots and re-installs of silirep.
fn host_identity() -> String {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            command_output("ioreg", &["-rd1", "-c", "IOPlatformExpertDevice"]).and_then(|o| {
                o.lines()
                    .find(|l| l.contains("IOPlatformUUID"))
                    .map(|l| l.split('"').nth(3).unwrap_or("").to_string())
            })
        })
        .or_else(|| command_output("hostname", &[]))
        .unwrap_or_default()
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn sysctl(name: &str) -> Option<String> {
    command_output("sysctl", &["-n", name])
}

fn describe_cpu() -> Cpu {
    let threads = std::thread::available_parallelism()
        .ok()
        .map(|n| n.get() as u32);
    let mut cpu = Cpu {
        model: String::new(),
        architecture: std::env::consts::ARCH.to_string(),
        cores: None,
        threads,
        performance_cores: None,
        efficiency_cores: None,
        caches_bytes: BTreeMap::new(),
    };
    if cfg!(target_os = "macos") {
        cpu.model = sysctl("machdep.cpu.brand_string").unwrap_or_default();
        cpu.cores = sysctl("hw.physicalcpu").and_then(|v| v.parse().ok());
        cpu.performance_cores = sysctl("hw.perflevel0.physicalcpu").and_then(|v| v.parse().ok());
        cpu.efficiency_cores = sysctl("hw.perflevel1.physicalcpu").and_then(|v| v.parse().ok());
        cpu.caches_bytes = silirep_cpu::cache_sizes();
    } else {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        cpu.model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        // Physical cores: distinct (physical id, core id) pairs.
        let mut cores = std::collections::BTreeSet::new();
        let mut physical = "0".to_string();
        for line in cpuinfo.lines() {
            if let Some((k, v)) = line.split_once(':') {
                match k.trim() {
                    "physical id" => physical = v.trim().to_string(),
                    "core id" => {
                        cores.insert((physical.clone(), v.trim().to_string()));
                    }
                    _ => {}
                }
            }
        }
        cpu.cores = if cores.is_empty() {
            threads
        } else {
            Some(cores.len() as u32)
        };
        cpu.caches_bytes = silirep_cpu::cache_sizes();
    }
    if cpu.model.is_empty() {
        cpu.model = format!("unknown {} CPU", std::env::consts::ARCH);
    }
    cpu
}

fn describe_os() -> Os {
    if cfg!(target_os = "macos") {
        return Os {
            name: "macOS".into(),
            version: command_output("sw_vers", &["-productVersion"]).unwrap_or_default(),
            kernel: command_output("uname", &["-r"]).unwrap_or_default(),
        };
    }
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        release
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    Os {
        name: field("NAME").unwrap_or_else(|| std::env::consts::OS.to_string()),
        version: field("VERSION_ID").unwrap_or_default(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_described_with_a_stable_id() {
        let a = describe_machine();
        let b = describe_machine();
        assert_eq!(a.id, b.id);
        assert!(!a.cpu.model.is_empty());
        assert!(a.id.len() > 9, "{}", a.id);
        assert!(a.cpu.threads.unwrap_or(0) >= 1);
    }
}
