//! How the GPUs of a measurement are linked, as the driver reports it — not as a datasheet
//! says: the CUDA driver's peer-to-peer attributes (`cuDeviceCanAccessPeer`,
//! `cuDeviceGetP2PAttribute`) for every ordered pair, and, where NVML (libnvidia-ml) is
//! there, each GPU's active NVLinks (`nvmlDeviceGetNvLinkState`, `...RemotePciInfo_v2`,
//! `...Version`), the PCIe path between two GPUs (`nvmlDeviceGetTopologyCommonAncestor`) and
//! each GPU's PCIe link to the host (`nvmlDeviceGet{Curr,Max}PcieLink{Generation,Width}`).
//!
//! Labels follow `nvidia-smi topo -m`: `NV18` for 18 NVLinks between two GPUs, `PIX`, `PXB`,
//! `PHB`, `NODE`, `SYS` for PCIe paths. Missing facts are left out, never guessed.

use crate::peers::PeerDevice;
use cudarc::driver::sys::{self, CUdevice_P2PAttribute};
use libloading::Library;
use silirep_core::schema::{Link, Topology, TopologyDevice};
use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_int, c_uint, c_void};

type NvmlReturn = c_uint;
type Device = *mut c_void;
const NVML_SUCCESS: NvmlReturn = 0;
/// `NVML_NVLINK_MAX_LINKS` in nvml.h (Hopper has 18).
const NVLINK_MAX_LINKS: c_uint = 18;
const NVML_FEATURE_ENABLED: c_uint = 1;

/// `nvmlPciInfo_t` (nvml.h): legacy bus id, domain, bus, device, ids, bus id.
#[repr(C)]
struct PciInfo {
    bus_id_legacy: [c_char; 16],
    domain: c_uint,
    bus: c_uint,
    device: c_uint,
    pci_device_id: c_uint,
    pci_sub_system_id: c_uint,
    bus_id: [c_char; 32],
}

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
    let handles: Vec<Option<Device>> = devices
        .iter()
        .map(|d| {
            let nvml = nvml.as_ref()?;
            nvml.handle(d.pci_bus_id.as_deref()?)
        })
        .collect();
    let facts: Vec<GpuLinks> = handles
        .iter()
        .map(|h| match (nvml.as_ref(), h) {
            (Some(nvml), Some(h)) => nvml.gpu_links(*h),
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

type GetUint = unsafe extern "C" fn(Device, *mut c_uint) -> NvmlReturn;
type GetLinkUint = unsafe extern "C" fn(Device, c_uint, *mut c_uint) -> NvmlReturn;

struct Nvml {
    by_bus: unsafe extern "C" fn(*const c_char, *mut Device) -> NvmlReturn,
    link_state: Option<GetLinkUint>,
    link_version: Option<GetLinkUint>,
    link_remote: Option<unsafe extern "C" fn(Device, c_uint, *mut PciInfo) -> NvmlReturn>,
    ancestor: Option<unsafe extern "C" fn(Device, Device, *mut c_uint) -> NvmlReturn>,
    pcie: [Option<GetUint>; 4],
    shutdown: unsafe extern "C" fn() -> NvmlReturn,
    _library: Library,
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: balances the successful nvmlInit_v2 in `open`.
        unsafe {
            (self.shutdown)();
        }
    }
}

impl Nvml {
    fn open() -> Option<Nvml> {
        // SAFETY: libnvidia-ml's initialisers only register the library; every symbol is
        // looked up with its nvml.h signature and used only while `library` lives beside it.
        unsafe {
            let library = Library::new("libnvidia-ml.so.1").ok()?;
            let init = *library
                .get::<unsafe extern "C" fn() -> NvmlReturn>(b"nvmlInit_v2\0")
                .ok()?;
            let shutdown = *library
                .get::<unsafe extern "C" fn() -> NvmlReturn>(b"nvmlShutdown\0")
                .ok()?;
            let by_bus = *library.get(b"nvmlDeviceGetHandleByPciBusId_v2\0").ok()?;
            let optional = |name: &[u8]| library.get::<GetUint>(name).ok().map(|s| *s);
            let pcie = [
                optional(b"nvmlDeviceGetCurrPcieLinkGeneration\0"),
                optional(b"nvmlDeviceGetCurrPcieLinkWidth\0"),
                optional(b"nvmlDeviceGetMaxPcieLinkGeneration\0"),
                optional(b"nvmlDeviceGetMaxPcieLinkWidth\0"),
            ];
            let link_state = library
                .get::<GetLinkUint>(b"nvmlDeviceGetNvLinkState\0")
                .ok()
                .map(|s| *s);
            let link_version = library
                .get::<GetLinkUint>(b"nvmlDeviceGetNvLinkVersion\0")
                .ok()
                .map(|s| *s);
            let link_remote = library
                .get(b"nvmlDeviceGetNvLinkRemotePciInfo_v2\0")
                .ok()
                .map(|s| *s);
            let ancestor = library
                .get(b"nvmlDeviceGetTopologyCommonAncestor\0")
                .ok()
                .map(|s| *s);
            if init() != NVML_SUCCESS {
                return None;
            }
            Some(Nvml {
                by_bus,
                link_state,
                link_version,
                link_remote,
                ancestor,
                pcie,
                shutdown,
                _library: library,
            })
        }
    }

    fn handle(&self, pci_bus_id: &str) -> Option<Device> {
        let bus = CString::new(pci_bus_id).ok()?;
        let mut device: Device = std::ptr::null_mut();
        // SAFETY: NUL-terminated string in, one handle out.
        (unsafe { (self.by_bus)(bus.as_ptr(), &mut device) } == NVML_SUCCESS).then_some(device)
    }

    fn gpu_links(&self, device: Device) -> GpuLinks {
        let mut out = GpuLinks::default();
        let read = |f: Option<GetUint>| {
            let mut v: c_uint = 0;
            // SAFETY: a valid handle; writes one unsigned int.
            f.filter(|f| unsafe { f(device, &mut v) } == NVML_SUCCESS)
                .map(|_| v)
        };
        let [cg, cw, mg, mw] = self.pcie;
        out.pcie_current = read(cg).zip(read(cw));
        out.pcie_max = read(mg).zip(read(mw));
        let Some(state) = self.link_state else {
            return out;
        };
        for link in 0..NVLINK_MAX_LINKS {
            let mut active: c_uint = 0;
            // SAFETY: a valid handle; link indices past the GPU's count return an error.
            if unsafe { state(device, link, &mut active) } != NVML_SUCCESS
                || active != NVML_FEATURE_ENABLED
            {
                continue;
            }
            let remote = self.link_remote.and_then(|f| {
                // SAFETY: writes one nvmlPciInfo_t, which PciInfo mirrors.
                let mut info: PciInfo = unsafe { std::mem::zeroed() };
                (unsafe { f(device, link, &mut info) } == NVML_SUCCESS).then_some((
                    info.domain,
                    info.bus,
                    info.device,
                ))
            });
            out.nvlink_remotes.push(remote);
            if out.nvlink_version.is_none()
                && let Some(f) = self.link_version
            {
                let mut v: c_uint = 0;
                // SAFETY: as above.
                if unsafe { f(device, link, &mut v) } == NVML_SUCCESS {
                    out.nvlink_version = Some(v);
                }
            }
        }
        out
    }

    fn common_ancestor(&self, a: Device, b: Device) -> Option<u32> {
        let f = self.ancestor?;
        let mut level: c_uint = 0;
        // SAFETY: two valid handles; writes one enum value.
        (unsafe { f(a, b, &mut level) } == NVML_SUCCESS).then_some(level)
    }
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

    #[test]
    fn pci_info_matches_nvml_layout() {
        // 16-byte legacy id, five unsigned ints, 32-byte id.
        assert_eq!(std::mem::size_of::<PciInfo>(), 16 + 5 * 4 + 32);
    }
}
