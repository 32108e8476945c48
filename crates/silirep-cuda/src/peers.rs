//! The GPUs of a multi-device measurement (peer copies, host transfers, collectives): one
//! context and one non-blocking stream per GPU, raw allocations on each, the known input
//! patterns of `kernels/interconnect.cu`, and CUDA-event timing on every stream involved.
//!
//! Opened only when an interconnect kernel is prepared, so single-GPU runs never touch the
//! other GPUs. Each GPU compiles only `interconnect.cu`, not the whole kernel set.

use crate::device::{OpenError, compile, driver_error, no_panic, pci_bus_id};
use crate::links;
use crate::sources::{INTERCONNECT_FILE, SOURCES};
use cudarc::driver::sys::{self, CUevent_flags, CUresult};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaStream, LaunchConfig, PushKernelArg, result,
};
use silirep_core::KernelError;
use silirep_core::schema::Topology;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Element types the pattern fill writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternElem {
    F32,
    Bf16,
}

impl PatternElem {
    pub fn size_bytes(self) -> usize {
        match self {
            PatternElem::F32 => 4,
            PatternElem::Bf16 => 2,
        }
    }

    /// Decodes little-endian device bytes to values.
    pub fn decode(self, raw: &[u8]) -> Vec<f64> {
        match self {
            PatternElem::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            PatternElem::Bf16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
        }
    }
}

pub struct PeerDevice {
    pub ordinal: u32,
    pub ctx: Arc<CudaContext>,
    /// Non-blocking, so work here never waits on another library's legacy default stream.
    pub stream: Arc<CudaStream>,
    pub name: String,
    pub pci_bus_id: Option<String>,
    sm_count: u32,
    functions: HashMap<&'static str, CudaFunction>,
    /// Timing events, reused across calls.
    events: RefCell<Vec<CudaEvent>>,
}

pub struct Peers {
    devices: Vec<PeerDevice>,
    /// Ordered pairs (accessor, owner) with peer access enabled.
    peer_access: RefCell<BTreeSet<(u32, u32)>>,
}

impl Peers {
    /// Opens every GPU in `ordinals` (CUDA numbering).
    pub fn open(ordinals: &[u32]) -> Result<Peers, OpenError> {
        let mut devices = Vec::new();
        for &ordinal in ordinals {
            let ctx = no_panic("creating a context", || CudaContext::new(ordinal as usize))?
                .map_err(|e| OpenError::Driver(format!("GPU {ordinal}: {e:?}")))?;
            let err = |e: result::DriverError| OpenError::Driver(format!("GPU {ordinal}: {e:?}"));
            let stream = ctx.new_stream().map_err(err)?;
            let cc = ctx.compute_capability().map_err(err)?;
            let sources = SOURCES.iter().filter(|s| s.file == INTERCONNECT_FILE);
            let functions = no_panic("compiling interconnect.cu", || compile(&ctx, cc, sources))??;
            let sm_count = ctx
                .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .map_err(err)?
                .max(1) as u32;
            devices.push(PeerDevice {
                ordinal,
                name: ctx.name().map_err(err)?,
                pci_bus_id: pci_bus_id(&ctx),
                ctx,
                stream,
                sm_count,
                functions,
                events: Default::default(),
            });
        }
        Ok(Peers {
            devices,
            peer_access: Default::default(),
        })
    }

    pub fn device(&self, ordinal: u32) -> Result<&PeerDevice, KernelError> {
        self.devices
            .iter()
            .find(|d| d.ordinal == ordinal)
            .ok_or_else(|| {
                KernelError::Unsupported(format!(
                    "GPU {ordinal} is not among the GPUs selected with --gpus ({})",
                    self.devices
                        .iter()
                        .map(|d| d.ordinal.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ))
            })
    }

    /// Lets kernels and copies on `accessor` reach `owner`'s memory directly (NVLink or
    /// PCIe peer-to-peer) instead of staging through host memory. An error when the driver
    /// says the pair cannot: a staged copy is not a peer copy and must not be reported as one.
    pub fn enable_peer_access(&self, accessor: u32, owner: u32) -> Result<(), KernelError> {
        if self.peer_access.borrow().contains(&(accessor, owner)) {
            return Ok(());
        }
        let (a, o) = (self.device(accessor)?, self.device(owner)?);
        let mut can = 0;
        // SAFETY: writes one int; both devices are valid ordinals.
        unsafe { sys::cuDeviceCanAccessPeer(&mut can, a.ctx.cu_device(), o.ctx.cu_device()) }
            .result()
            .map_err(driver_error)?;
        if can == 0 {
            return Err(KernelError::Unsupported(format!(
                "the driver reports no peer access from GPU {accessor} to GPU {owner} (cuDeviceCanAccessPeer)"
            )));
        }
        a.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: `o`'s context is alive for as long as `self`.
        let status = unsafe { sys::cuCtxEnablePeerAccess(o.ctx.cu_ctx(), 0) };
        if status != CUresult::CUDA_SUCCESS
            && status != CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED
        {
            return Err(driver_error(result::DriverError(status)));
        }
        self.peer_access.borrow_mut().insert((accessor, owner));
        Ok(())
    }

    /// The GPUs `ordinals` (and the host, with `host`) and the links between them as the
    /// driver and NVML report them.
    pub fn topology(&self, ordinals: &[u32], host: bool) -> Topology {
        let devices: Vec<&PeerDevice> = ordinals
            .iter()
            .filter_map(|o| self.device(*o).ok())
            .collect();
        links::describe(&devices, host)
    }

    /// Times `iterations` samples of `group` calls of `run` with one CUDA event pair per
    /// sample on each of `devices`' streams. A sample is the slowest device's time for the
    /// group, divided by `group`: a collective is done when its last GPU is.
    pub fn time(
        &self,
        devices: &[u32],
        iterations: u32,
        group: u32,
        mut run: impl FnMut() -> Result<(), KernelError>,
    ) -> Result<Vec<f64>, KernelError> {
        let devices: Vec<&PeerDevice> = devices
            .iter()
            .map(|o| self.device(*o))
            .collect::<Result<_, _>>()?;
        let mut events: Vec<std::cell::RefMut<Vec<CudaEvent>>> =
            devices.iter().map(|d| d.events.borrow_mut()).collect();
        for (device, events) in devices.iter().zip(events.iter_mut()) {
            while events.len() <= iterations as usize {
                events.push(
                    device
                        .ctx
                        .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                        .map_err(driver_error)?,
                );
            }
            events[0].record(&device.stream).map_err(driver_error)?;
        }
        for i in 0..iterations as usize {
            for _ in 0..group {
                run()?;
            }
            for (device, events) in devices.iter().zip(events.iter()) {
                events[i + 1].record(&device.stream).map_err(driver_error)?;
            }
        }
        for events in &events {
            events[iterations as usize]
                .synchronize()
                .map_err(driver_error)?;
        }
        (0..iterations as usize)
            .map(|i| {
                let mut slowest = 0.0f64;
                for events in &events {
                    let ms = events[i].elapsed_ms(&events[i + 1]).map_err(driver_error)?;
                    slowest = slowest.max(ms as f64);
                }
                Ok(slowest * 1e-3 / group as f64)
            })
            .collect()
    }

    /// How many calls of `run` to time as one sample: enough to span `span_s` (at most 256
    /// calls). 100 µs ([`SHORT_SAMPLE_S`]) for one device's transfers, whose few-byte sizes
    /// take microseconds, within the event resolution.
    pub fn group_for(
        &self,
        devices: &[u32],
        span_s: f64,
        mut run: impl FnMut() -> Result<(), KernelError>,
    ) -> Result<u32, KernelError> {
        let once = self.time(devices, 3, 1, &mut run)?;
        let t = once.iter().cloned().fold(f64::INFINITY, f64::min);
        Ok(((span_s / t).ceil() as u32).clamp(1, 256))
    }
}

/// The span of one sample of a transfer on one device or between two: see [`Peers::group_for`].
pub const SHORT_SAMPLE_S: f64 = 100e-6;

impl PeerDevice {
    pub fn free_bytes(&self) -> u64 {
        if self.ctx.bind_to_thread().is_err() {
            return 0;
        }
        result::mem_get_info()
            .map(|(free, _)| free as u64)
            .unwrap_or(0)
    }

    /// Fails with OutOfMemory (never aborts) when `bytes` do not fit, keeping 512 MiB spare
    /// for NCCL's own buffers and the driver.
    pub fn alloc(&self, bytes: usize, what: &str) -> Result<PeerBuffer, KernelError> {
        let free = self.free_bytes();
        if bytes as u64 + (512 << 20) > free {
            return Err(KernelError::OutOfMemory(format!(
                "{what}: {bytes} bytes needed, {free} free on GPU {}",
                self.ordinal
            )));
        }
        self.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: plain device allocation; freed in PeerBuffer's Drop.
        let ptr = unsafe { result::malloc_sync(bytes.max(1)) }.map_err(|e| {
            if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
                KernelError::OutOfMemory(format!("{what}: {bytes} bytes on GPU {}", self.ordinal))
            } else {
                driver_error(e)
            }
        })?;
        Ok(PeerBuffer {
            ptr,
            bytes,
            ctx: self.ctx.clone(),
        })
    }

    /// Writes the known pattern of rank `rank` (interconnect.cu) into `count` elements.
    pub fn fill_pattern(
        &self,
        ptr: u64,
        count: usize,
        elem: PatternElem,
        rank: u64,
    ) -> Result<(), KernelError> {
        let name = match elem {
            PatternElem::F32 => "fill_pattern_f32",
            PatternElem::Bf16 => "fill_pattern_bf16",
        };
        let f = self
            .functions
            .get(name)
            .ok_or_else(|| KernelError::Backend(format!("kernel {name} was not compiled")))?;
        let n = count as u64;
        let cfg = LaunchConfig {
            grid_dim: (self.sm_count * 4, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(f);
        launch.arg(&ptr).arg(&n).arg(&rank);
        // SAFETY: (pointer, count, rank) as interconnect.cu declares; the caller's buffer
        // holds `count` elements of `elem`.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }

    /// Copies `bytes` (a multiple of 4) from `src` to `dst` with this GPU's SMs
    /// (interconnect.cu's `peer_copy_push`); `dst` may be another GPU's memory mapped by
    /// peer access. Blocks: `blocks_per_sm` per SM, 256 threads each.
    pub fn copy_with_sms(
        &self,
        src: u64,
        dst: u64,
        bytes: usize,
        blocks_per_sm: u32,
    ) -> Result<(), KernelError> {
        let f = self
            .functions
            .get("peer_copy_push")
            .ok_or_else(|| KernelError::Backend("kernel peer_copy_push was not compiled".into()))?;
        let n = bytes as u64;
        // No more blocks than 16-byte vectors need (an 8-byte copy runs one block).
        let blocks = (self.sm_count * blocks_per_sm).min(n.div_ceil(16 * 256).max(1) as u32);
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(f);
        launch.arg(&src).arg(&dst).arg(&n);
        // SAFETY: (src, dst, bytes) as interconnect.cu declares; both hold `bytes` bytes and
        // `dst` is this GPU's or mapped into it by peer access.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }

    /// Sets every byte of `bytes` at `ptr` to `value` (a poison no pattern element has).
    pub fn poison(&self, ptr: u64, bytes: usize, value: u8) -> Result<(), KernelError> {
        self.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: the caller's allocation holds `bytes` bytes.
        unsafe { sys::cuMemsetD8Async(ptr, value, bytes, self.stream.cu_stream()) }
            .result()
            .map_err(driver_error)
    }

    /// Copies `bytes` bytes from device memory at `ptr + offset` to the host, after the
    /// stream's queued work.
    pub fn download(&self, ptr: u64, offset: usize, bytes: usize) -> Result<Vec<u8>, KernelError> {
        self.synchronize()?;
        self.ctx.bind_to_thread().map_err(driver_error)?;
        let mut raw = vec![0u8; bytes];
        // SAFETY: the caller's buffer holds at least offset + bytes bytes.
        unsafe { result::memcpy_dtoh_sync(&mut raw, ptr + offset as u64) }.map_err(driver_error)?;
        Ok(raw)
    }

    pub fn synchronize(&self) -> Result<(), KernelError> {
        self.stream.synchronize().map_err(driver_error)
    }
}

/// A device allocation on one of the peer GPUs, freed on drop in its own context.
pub struct PeerBuffer {
    pub ptr: u64,
    pub bytes: usize,
    ctx: Arc<CudaContext>,
}

impl Drop for PeerBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from malloc_sync in `ctx` and is freed once; free synchronises.
        unsafe {
            if self.ctx.bind_to_thread().is_ok() {
                let _ = result::free_sync(self.ptr);
            }
        }
    }
}
