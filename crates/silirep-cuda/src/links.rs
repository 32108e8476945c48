//! How the GPUs of a measurement are linked, as the driver reports it — not as a datasheet
//! says: the CUDA driver's peer-to-peer attributes (`cuDeviceCanAccessPeer`,
//! `cuDeviceGetP2PAttribute`) for every ordered pair, and, where NVML (libnvidia-ml) is
//! there, each GPU's active NVLinks (`nvmlDeviceGetNvLinkState`, `...RemotePciInfo_v2`,
//! `...Version`), the PCIe path between two GPUs (`nvmlDeviceGetTopologyCommonAncestor`) and
//! each GPU's PCIe link to the host (`nvmlDeviceGet{Curr,Max}PcieLink{Generation,Width}`).
//!
//! Labels follow `nvidia-smi topo -m`: `NV18` for 18 NVLinks between two GPUs, `PIX`, `PXB`,
//! `PHB`, `NODE`, `SYS` for PCIe paths. Missing facts are left out, never guessed.

use crate::nvml::{Handle, Nvml, PcieLink};
use crate::peers::PeerDevice;
use cudarc::driver::sys::{self, CUdevice_P2PAttribute};
use silirep_core::schema::{Link, Topology, TopologyDevice};
use std::collections::BTreeMap;
use std::ffi::c_int;

/// `NVML_NVLINK_MAX_LINKS` in nvml.h (Hopper has 18).
const NVLINK_MAX_LINKS: u32 = 18;

/// What NVML says about one GPU.
#[derive(Debug, Default, Clone)]
struct GpuLinks {
    /// (domain, bus, device) of the far end of each active NVLink.
    nvlink_remotes: Vec<Option<(u32, u32, u32)>>,
    nvlink_version: Option<u32>,
    pcie_current: Option<(u32, u32)>,
    pcie_max: Option<(u32, u32)>,
}

/// The topology record of `devices` (and the host with `host`).
pub fn describe(devices: &[&PeerDevice], host: bool) -> Topology {
    let nvml = Nvml::open();
    let handles: Vec<Option<Handle>> = devices
        .iter()
        .map(|d| {
            let nvml = nvml.as_ref()?;
            nvml.device(d.pci_bus_id.as_deref()?)
        })
        .collect();
    let facts: Vec<GpuLinks> = handles
        .iter()
        .map(|h| match (nvml.as_ref(), h) {
            (Some(nvml), Some(h)) => gpu_links(nvml, *h),
            _ => GpuLinks::default(),
        })
        .collect();

    let mut topology = Topology::default();
    if host {
        topology.devices.push(TopologyDevice {
            id: "host".into(),
            name: "host memory".into(),
            pci_bus_id: None,
        });
    }
    for d in devices {
        topology.devices.push(TopologyDevice {
            id: d.ordinal.to_string(),
            name: d.name.clone(),
            pci_bus_id: d.pci_bus_id.clone(),
        });
    }
    if host {
        for (d, f) in devices.iter().zip(&facts) {
            topology.links.push(host_link(d, f));
        }
    }
    for (i, a) in devices.iter().enumerate() {
        for (j, b) in devices.iter().enumerate() {
            if i == j {
                continue;
            }
            let ancestor = match (nvml.as_ref(), handles[i], handles[j]) {
                (Some(nvml), Some(x), Some(y)) => nvml.common_ancestor(x, y),
                _ => None,
            };
            topology
                .links
                .push(gpu_link(a, b, &facts[i], &facts[j], ancestor));
        }
    }
    topology
}

fn host_link(d: &PeerDevice, f: &GpuLinks) -> Link {
    let mut attributes = BTreeMap::new();
    if let Some((generation, width)) = f.pcie_current {
        attributes.insert(
            "pcie_current".into(),
            format!(
                "gen {generation} x{width} (nvmlDeviceGetCurrPcieLink*; an idle GPU may train down)"
            ),
        );
    }
    if let Some((generation, width)) = f.pcie_max {
        attributes.insert(
            "pcie_max".into(),
            format!("gen {generation} x{width} (nvmlDeviceGetMaxPcieLink*)"),
        );
    }
    let (kind, label) = match f.pcie_max.or(f.pcie_current) {
        Some((generation, width)) => ("pcie", format!("PCIe gen {generation} x{width}")),
        None => ("unknown", "not reported (NVML unavailable)".into()),
    };
    Link {
        from: "host".into(),
        to: d.ordinal.to_string(),
        kind: kind.into(),
        label,
        attributes,
    }
}

fn gpu_link(
    a: &PeerDevice,
    b: &PeerDevice,
    fa: &GpuLinks,
    fb: &GpuLinks,
    ancestor: Option<u32>,
) -> Link {
    let mut attributes = BTreeMap::new();
    let p2p = |attribute| {
        let mut value: c_int = 0;
        // SAFETY: writes one int; both are valid devices.
        let status = unsafe {
            sys::cuDeviceGetP2PAttribute(
                &mut value,
                attribute,
                a.ctx.cu_device(),
                b.ctx.cu_device(),
            )
        };
        (status == sys::CUresult::CUDA_SUCCESS).then_some(value)
    };
    for (key, attribute) in [
        (
            "p2p_access_supported",
            CUdevice_P2PAttribute::CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED,
        ),
        (
            "p2p_native_atomics",
            CUdevice_P2PAttribute::CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED,
        ),
        (
            "p2p_performance_rank",
            CUdevice_P2PAttribute::CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK,
        ),
    ] {
        if let Some(v) = p2p(attribute) {
            attributes.insert(format!("{key} (cuDeviceGetP2PAttribute)"), v.to_string());
        }
    }
    let b_address = b.pci_bus_id.as_deref().and_then(parse_bus_id);
    let direct = fa
        .nvlink_remotes
        .iter()
        .filter(|r| r.is_some() && **r == b_address)
        .count();
    // Links whose far end is not a GPU of this set: NVSwitch ports on HGX boards, where every
    // pair talks over all of them (nvidia-smi then shows NV18 for every pair).
    let switched = |f: &GpuLinks, other: Option<(u32, u32, u32)>| {
        f.nvlink_remotes
            .iter()
            .filter(|r| r.is_none() || **r != other)
            .count()
    };
    let a_address = a.pci_bus_id.as_deref().and_then(parse_bus_id);
    let via_switch = switched(fa, b_address).min(switched(fb, a_address));
    if !fa.nvlink_remotes.is_empty() {
        attributes.insert(
            "nvlinks_active (nvmlDeviceGetNvLinkState)".into(),
            fa.nvlink_remotes.len().to_string(),
        );
        attributes.insert(
            "nvlinks_to_peer (nvmlDeviceGetNvLinkRemotePciInfo_v2)".into(),
            direct.to_string(),
        );
    }
    if let Some(v) = fa.nvlink_version {
        attributes.insert(
            "nvlink_version (nvmlDeviceGetNvLinkVersion)".into(),
            nvlink_version_label(v),
        );
    }
    if let Some(level) = ancestor {
        attributes.insert(
            "pcie_common_ancestor (nvmlDeviceGetTopologyCommonAncestor)".into(),
            pcie_path_label(level).to_string(),
        );
    }
    if direct == 0 && via_switch > 0 {
        attributes.insert("nvlink_path".into(), "through NVSwitch".into());
    }
    let (kind, label) = pair_label(direct, via_switch, ancestor);
    Link {
        from: a.ordinal.to_string(),
        to: b.ordinal.to_string(),
        kind: kind.into(),
        label,
        attributes,
    }
}

/// Kind and `nvidia-smi topo -m` label of a GPU pair: `NV<n>` for n NVLinks between them
/// (direct, else through NVSwitch ports both have), else the PCIe path.
pub fn pair_label(
    direct: usize,
    via_switch: usize,
    ancestor: Option<u32>,
) -> (&'static str, String) {
    if direct > 0 {
        ("nvlink", format!("NV{direct}"))
    } else if via_switch > 0 {
        ("nvlink", format!("NV{via_switch}"))
    } else if let Some(level) = ancestor {
        ("pcie", pcie_path_label(level).to_string())
    } else {
        ("unknown", "not reported (NVML unavailable)".to_string())
    }
}

/// `nvmlNvlinkVersion_t` (nvml.h: 1 → 1.0, 2 → 2.0, 3 → 2.2, 4 → 3.0, 5 → 3.1, 6 → 4.0,
/// 7 → 5.0), with the raw value kept beside it.
pub fn nvlink_version_label(raw: u32) -> String {
    let version = match raw {
        1 => "1.0",
        2 => "2.0",
        3 => "2.2",
        4 => "3.0",
        5 => "3.1",
        6 => "4.0",
        7 => "5.0",
        _ => return format!("unknown (NVML value {raw})"),
    };
    format!("{version} (NVML value {raw})")
}

/// `nvmlGpuTopologyLevel_t` as `nvidia-smi topo -m` prints it.
pub fn pcie_path_label(level: u32) -> &'static str {
    match level {
        0 => "X",
        10 => "PIX",
        20 => "PXB",
        30 => "PHB",
        40 => "NODE",
        50 => "SYS",
        _ => "unknown",
    }
}

/// `0000:18:00.0` (or NVML's `00000000:18:00.0`) → (domain, bus, device).
pub fn parse_bus_id(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().split(':');
    let domain = u32::from_str_radix(parts.next()?, 16).ok()?;
    let bus = u32::from_str_radix(parts.next()?, 16).ok()?;
    let device = u32::from_str_radix(parts.next()?.split('.').next()?, 16).ok()?;
    Some((domain, bus, device))
}

fn gpu_links(nvml: &Nvml, device: Handle) -> GpuLinks {
    let mut out = GpuLinks {
        pcie_current: nvml.pcie_link(device, PcieLink::Current),
        pcie_max: nvml.pcie_link(device, PcieLink::Max),
        ..GpuLinks::default()
    };
    for link in 0..NVLINK_MAX_LINKS {
        // Link indices past the GPU's count, and GPUs without NVLink, answer None.
        if nvml.nvlink_active(device, link) != Some(true) {
            continue;
        }
        out.nvlink_remotes.push(nvml.nvlink_remote(device, link));
        if out.nvlink_version.is_none() {
            out.nvlink_version = nvml.nvlink_version(device, link);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_ids_parse_in_cuda_and_nvml_spellings() {
        assert_eq!(parse_bus_id("0000:18:00.0"), Some((0, 0x18, 0)));
        assert_eq!(parse_bus_id("00000000:DB:01.0"), Some((0, 0xdb, 1)));
        assert_eq!(parse_bus_id("garbage"), None);
    }

    #[test]
    fn pcie_paths_use_nvidia_smi_names() {
        assert_eq!(pcie_path_label(10), "PIX");
        assert_eq!(pcie_path_label(50), "SYS");
        assert_eq!(pcie_path_label(7), "unknown");
    }

    #[test]
    fn pairs_are_labelled_as_nvidia_smi_does() {
        assert_eq!(pair_label(18, 0, Some(50)), ("nvlink", "NV18".to_string()));
        assert_eq!(pair_label(0, 18, Some(50)), ("nvlink", "NV18".to_string()));
        assert_eq!(pair_label(0, 0, Some(30)), ("pcie", "PHB".to_string()));
        assert_eq!(pair_label(0, 0, None).0, "unknown");
    }

    #[test]
    fn nvlink_versions_decode_nvmls_enum() {
        // Hopper's NVLink 4 reads 6 (seen on an H200 pair).
        assert_eq!(nvlink_version_label(6), "4.0 (NVML value 6)");
        assert_eq!(nvlink_version_label(99), "unknown (NVML value 99)");
    }
}
