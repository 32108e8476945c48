//! libnvidia-ml (NVML), opened at run time like every other NVIDIA library here: the one
//! place that loads it, initialises it, finds a GPU by its PCI bus id and asks it one fact at
//! a time. What the facts mean is for their users: `telemetry` (clock, power and temperature
//! while a kernel is timed) and `links` (NVLinks and PCIe paths between GPUs).
//!
//! Every query is optional: a driver without the symbol, or a GPU that does not report the
//! value (power on some GeForce, vGPU and MIG set-ups; NVLink on PCIe cards), answers `None`
//! and the measurement goes on without that fact.

use libloading::Library;
use std::ffi::{CString, c_char, c_uint, c_ulonglong, c_void};

type Return = c_uint;
type Device = *mut c_void;

/// One GPU as NVML knows it (`nvmlDevice_t`); only [`Nvml::device`] makes one. NVML's
/// handles are process-wide and valid while the library is initialised, which every live
/// `Nvml` keeps it (init and shutdown are counted); queries take `&Nvml`, so a handle is only
/// ever used while one is alive.
#[derive(Clone, Copy)]
pub struct Handle(Device);
const SUCCESS: Return = 0;
const CLOCK_SM: c_uint = 1;
const TEMPERATURE_GPU: c_uint = 0;
const FEATURE_ENABLED: c_uint = 1;

type GetUint = unsafe extern "C" fn(Device, *mut c_uint) -> Return;
type GetUintOf = unsafe extern "C" fn(Device, c_uint, *mut c_uint) -> Return;

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

/// Which of a GPU's PCIe link settings to read.
#[derive(Clone, Copy)]
pub enum PcieLink {
    /// What the link runs at now (an idle GPU may train down).
    Current,
    /// The most the GPU and its slot support.
    Max,
}

pub struct Nvml {
    by_bus: unsafe extern "C" fn(*const c_char, *mut Device) -> Return,
    clock: Option<GetUintOf>,
    power: Option<GetUint>,
    temperature: Option<GetUintOf>,
    reasons: Option<unsafe extern "C" fn(Device, *mut c_ulonglong) -> Return>,
    power_limit: Option<GetUint>,
    /// Current generation, current width, max generation, max width.
    pcie: [Option<GetUint>; 4],
    link_state: Option<GetUintOf>,
    link_version: Option<GetUintOf>,
    link_remote: Option<unsafe extern "C" fn(Device, c_uint, *mut PciInfo) -> Return>,
    ancestor: Option<unsafe extern "C" fn(Device, Device, *mut c_uint) -> Return>,
    shutdown: unsafe extern "C" fn() -> Return,
    /// Keeps the function pointers above valid; dropped after `drop` shut NVML down.
    _library: Library,
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: balances the successful nvmlInit_v2 in `open`; no handle outlives `self`.
        unsafe {
            (self.shutdown)();
        }
    }
}

impl Nvml {
    /// Loads and initialises NVML; `None` when the library, its entry points or a working
    /// driver are not there.
    pub fn open() -> Option<Nvml> {
        // SAFETY: libnvidia-ml's initialisers only register the library; every symbol is
        // looked up with its nvml.h signature and used only while `library` lives beside it.
        unsafe {
            let library = Library::new("libnvidia-ml.so.1").ok()?;
            let init = *library
                .get::<unsafe extern "C" fn() -> Return>(b"nvmlInit_v2\0")
                .ok()?;
            let shutdown = *library
                .get::<unsafe extern "C" fn() -> Return>(b"nvmlShutdown\0")
                .ok()?;
            let by_bus = *library.get(b"nvmlDeviceGetHandleByPciBusId_v2\0").ok()?;
            if init() != SUCCESS {
                return None;
            }
            // Nothing below can fail, so the value returned (whose drop shuts NVML down)
            // always balances this initialisation: every query is optional.
            let uint = |name: &[u8]| library.get::<GetUint>(name).ok().map(|s| *s);
            let uint_of = |name: &[u8]| library.get::<GetUintOf>(name).ok().map(|s| *s);
            Some(Nvml {
                by_bus,
                clock: uint_of(b"nvmlDeviceGetClockInfo\0"),
                power: uint(b"nvmlDeviceGetPowerUsage\0"),
                temperature: uint_of(b"nvmlDeviceGetTemperature\0"),
                // Renamed in driver 535; older drivers have the old name.
                reasons: library
                    .get(b"nvmlDeviceGetCurrentClocksEventReasons\0")
                    .or_else(|_| library.get(b"nvmlDeviceGetCurrentClocksThrottleReasons\0"))
                    .ok()
                    .map(|s| *s),
                power_limit: uint(b"nvmlDeviceGetEnforcedPowerLimit\0"),
                pcie: [
                    uint(b"nvmlDeviceGetCurrPcieLinkGeneration\0"),
                    uint(b"nvmlDeviceGetCurrPcieLinkWidth\0"),
                    uint(b"nvmlDeviceGetMaxPcieLinkGeneration\0"),
                    uint(b"nvmlDeviceGetMaxPcieLinkWidth\0"),
                ],
                link_state: uint_of(b"nvmlDeviceGetNvLinkState\0"),
                link_version: uint_of(b"nvmlDeviceGetNvLinkVersion\0"),
                link_remote: library
                    .get(b"nvmlDeviceGetNvLinkRemotePciInfo_v2\0")
                    .ok()
                    .map(|s| *s),
                ancestor: library
                    .get(b"nvmlDeviceGetTopologyCommonAncestor\0")
                    .ok()
                    .map(|s| *s),
                shutdown,
                _library: library,
            })
        }
    }

    /// The GPU at `pci_bus_id` (as `cuDeviceGetPCIBusId` writes it, which names the same GPU
    /// whatever order CUDA and NVML enumerate devices in).
    pub fn device(&self, pci_bus_id: &str) -> Option<Handle> {
        let bus = CString::new(pci_bus_id).ok()?;
        let mut device: Device = std::ptr::null_mut();
        // SAFETY: NUL-terminated string in, one handle out.
        (unsafe { (self.by_bus)(bus.as_ptr(), &mut device) } == SUCCESS).then_some(Handle(device))
    }

    pub fn sm_clock_mhz(&self, device: Handle) -> Option<u32> {
        uint_of(self.clock, device, CLOCK_SM)
    }

    /// NVML's power reading (on recent GPUs an average over about the last second).
    pub fn power_w(&self, device: Handle) -> Option<f64> {
        uint(self.power, device).map(|mw| f64::from(mw) / 1000.0)
    }

    pub fn temperature_c(&self, device: Handle) -> Option<u32> {
        uint_of(self.temperature, device, TEMPERATURE_GPU)
    }

    /// The `nvmlClocksEventReasons` bits set now.
    pub fn clock_event_reasons(&self, device: Handle) -> Option<u64> {
        let f = self.reasons?;
        let mut mask: c_ulonglong = 0;
        // SAFETY: a valid handle; writes one unsigned long long.
        (unsafe { f(device.0, &mut mask) } == SUCCESS).then_some(mask)
    }

    /// The power limit the driver enforces.
    pub fn power_limit_w(&self, device: Handle) -> Option<f64> {
        uint(self.power_limit, device).map(|mw| f64::from(mw) / 1000.0)
    }

    /// (generation, lane width) of the GPU's PCIe link.
    pub fn pcie_link(&self, device: Handle, which: PcieLink) -> Option<(u32, u32)> {
        let [current_gen, current_width, max_gen, max_width] = self.pcie;
        match which {
            PcieLink::Current => uint(current_gen, device).zip(uint(current_width, device)),
            PcieLink::Max => uint(max_gen, device).zip(uint(max_width, device)),
        }
    }

    /// Whether NVLink `link` is active; `None` past the GPU's link count or without NVLink.
    pub fn nvlink_active(&self, device: Handle, link: u32) -> Option<bool> {
        uint_of(self.link_state, device, link).map(|state| state == FEATURE_ENABLED)
    }

    /// `nvmlNvlinkVersion_t` of NVLink `link`.
    pub fn nvlink_version(&self, device: Handle, link: u32) -> Option<u32> {
        uint_of(self.link_version, device, link)
    }

    /// (domain, bus, device) of the far end of NVLink `link`.
    pub fn nvlink_remote(&self, device: Handle, link: u32) -> Option<(u32, u32, u32)> {
        let f = self.link_remote?;
        // SAFETY: zeroes are a valid PciInfo; the call writes one nvmlPciInfo_t, which
        // PciInfo mirrors.
        let mut info: PciInfo = unsafe { std::mem::zeroed() };
        (unsafe { f(device.0, link, &mut info) } == SUCCESS).then_some((
            info.domain,
            info.bus,
            info.device,
        ))
    }

    /// `nvmlGpuTopologyLevel_t` of the closest PCIe ancestor two GPUs share.
    pub fn common_ancestor(&self, a: Handle, b: Handle) -> Option<u32> {
        let f = self.ancestor?;
        let mut level: c_uint = 0;
        // SAFETY: two valid handles; writes one enum value.
        (unsafe { f(a.0, b.0, &mut level) } == SUCCESS).then_some(level)
    }
}

fn uint(f: Option<GetUint>, device: Handle) -> Option<u32> {
    let f = f?;
    let mut value: c_uint = 0;
    // SAFETY: a valid handle; writes one unsigned int.
    (unsafe { f(device.0, &mut value) } == SUCCESS).then_some(value)
}

fn uint_of(f: Option<GetUintOf>, device: Handle, which: c_uint) -> Option<u32> {
    let f = f?;
    let mut value: c_uint = 0;
    // SAFETY: a valid handle; writes one unsigned int (an invalid `which` is an error code).
    (unsafe { f(device.0, which, &mut value) } == SUCCESS).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_info_matches_nvml_layout() {
        // 16-byte legacy id, five unsigned ints, 32-byte id.
        assert_eq!(std::mem::size_of::<PciInfo>(), 16 + 5 * 4 + 32);
    }

    #[test]
    fn an_unknown_bus_is_none_not_a_panic() {
        // Without NVML (CI) `open` is None because the library is missing; with it, no GPU
        // sits at this bus address.
        assert!(
            Nvml::open()
                .and_then(|n| n.device("ffff:ff:1f.7"))
                .is_none()
        );
    }
}
