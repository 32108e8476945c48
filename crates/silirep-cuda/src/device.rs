//! The GPU as the kernels see it: opening the driver (and saying clearly what is missing when
//! it cannot), device properties, raw allocations, seeded fills, downloads, and event timing.
//!
//! Memory is managed as raw device pointers rather than cudarc's typed slices: everything runs
//! on one stream, so cudarc's per-slice event tracking would only add work to every launch.

use crate::host::ElemType;
use crate::sources::{SOURCES, Source, compilation_unit};
use crate::telemetry::{Reading, Telemetry};
use cudarc::driver::sys::{CUdevice_attribute, CUevent_flags, CUresult};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaStream, LaunchConfig, PushKernelArg, result,
};
use silirep_core::KernelError;
use std::collections::HashMap;
use std::sync::Arc;

/// Why the CUDA backend could not open. Shown to the user as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{library} could not be loaded ({hint}); searched for {candidates}. Install the NVIDIA driver / CUDA 13 toolkit or add its lib directory to LD_LIBRARY_PATH"
    )]
    LibraryMissing {
        library: &'static str,
        hint: &'static str,
        candidates: String,
    },
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    #[error("CUDA driver error while opening the device: {0}")]
    Driver(String),
    #[error("NVRTC could not compile {file}: {log}")]
    Compile { file: &'static str, log: String },
}

/// Checks that each run-time library can be opened before cudarc touches it: cudarc's dynamic
/// loading panics on a missing library, which must become an error here instead.
pub fn probe_libraries() -> Result<(), OpenError> {
    // SAFETY: each probe only tries `dlopen` on the candidate names and closes the handle.
    let checks: [(&'static str, &'static str, &'static str, bool); 3] = unsafe {
        [
            (
                "the NVIDIA driver library libcuda",
                "cuda",
                "is an NVIDIA driver installed?",
                cudarc::driver::sys::is_culib_present(),
            ),
            (
                "cuBLASLt (libcublasLt)",
                "cublasLt",
                "part of the CUDA toolkit or the nvidia-cublas wheel",
                cudarc::cublaslt::sys::is_culib_present(),
            ),
            (
                "NVRTC (libnvrtc)",
                "nvrtc",
                "part of the CUDA toolkit or the nvidia-cuda-nvrtc wheel",
                cudarc::nvrtc::sys::is_culib_present(),
            ),
        ]
    };
    for (library, stem, hint, present) in checks {
        if !present {
            let names = cudarc::get_lib_name_candidates(stem);
            // The Linux sonames (`libcuda.so`, `libcuda.so.1`, ...), not the Windows-style ones.
            let shown: Vec<&String> = names
                .iter()
                .filter(|n| n.starts_with(&format!("lib{stem}.so")))
                .collect();
            return Err(OpenError::LibraryMissing {
                library,
                hint,
                candidates: format!("{shown:?}"),
            });
        }
    }
    Ok(())
}

/// Runs `f`, turning a panic inside cudarc (a missing symbol in an old library) into an error.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, OpenError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        OpenError::Driver(format!("{what}: {message}"))
    })
}

/// What the device is, read once at open.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub compute_capability: (i32, i32),
    pub sm_count: u32,
    pub memory_bytes: u64,
    pub l2_bytes: u64,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    pub memory_bus_bits: Option<u32>,
    /// `cuDriverGetVersion`, e.g. 13000 → "13.0".
    pub driver_api_version: String,
    /// The kernel module's version string (e.g. 580.159.04) where /proc says.
    pub driver_release: Option<String>,
    pub nvrtc_version: String,
    pub cublaslt_version: String,
}

pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub info: DeviceInfo,
    functions: HashMap<&'static str, CudaFunction>,
    /// Timing events, reused across calls (creating a thousand per batch is measurable).
    events: std::cell::RefCell<Vec<CudaEvent>>,
    /// Clock, power and temperature source; `None` where NVML is not available.
    pub telemetry: Option<Telemetry>,
    /// One reading after every timed batch while `recording`, for the kernel being measured.
    pub readings: std::cell::RefCell<Vec<Reading>>,
    /// Set once a kernel's timed samples start: readings during autotuning and warm-up would
    /// only add host work (and GPU idle gaps) where nobody uses them.
    pub recording: std::cell::Cell<bool>,
}

impl Gpu {
    pub fn open(ordinal: usize) -> Result<Gpu, OpenError> {
        probe_libraries()?;
        let count = no_panic("counting devices", CudaContext::device_count)?
            .map_err(|e| OpenError::NoDevice(format!("{e:?}")))?;
        if count as usize <= ordinal {
            return Err(OpenError::NoDevice(format!(
                "{count} CUDA device(s) visible, device {ordinal} asked for"
            )));
        }
        let ctx = no_panic("creating the context", || CudaContext::new(ordinal))?
            .map_err(|e| OpenError::Driver(format!("{e:?}")))?;
        // One stream, ordered work: cudarc's cross-stream event tracking is not needed.
        // SAFETY: no slices exist yet, and this backend never uses a second stream.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let info = no_panic("reading device properties", || read_info(&ctx))??;
        let functions = no_panic("compiling kernels", || {
            compile(&ctx, info.compute_capability, SOURCES.iter())
        })??;
        let telemetry = pci_bus_id(&ctx).and_then(|bus| Telemetry::open(&bus));
        Ok(Gpu {
            ctx,
            stream,
            info,
            functions,
            events: Default::default(),
            telemetry,
            readings: Default::default(),
            recording: Default::default(),
        })
    }

    pub fn function(&self, name: &str) -> Result<&CudaFunction, KernelError> {
        self.functions
            .get(name)
            .ok_or_else(|| KernelError::Backend(format!("kernel {name} was not compiled")))
    }

    /// A grid of `blocks_per_sm` blocks on every SM, for grid-stride kernels.
    pub fn persistent_grid(&self, blocks_per_sm: u32, threads: u32) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (self.info.sm_count * blocks_per_sm, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    pub fn free_bytes(&self) -> u64 {
        self.ctx
            .mem_get_info()
            .map(|(free, _)| free as u64)
            .unwrap_or(0)
    }

    /// Fails with OutOfMemory (never aborts) when `bytes` do not fit, keeping 512 MiB spare
    /// for cuBLASLt workspaces and the driver.
    pub fn alloc(&self, bytes: usize, what: &str) -> Result<Buffer, KernelError> {
        let free = self.free_bytes();
        if bytes as u64 + (512 << 20) > free {
            return Err(KernelError::OutOfMemory(format!(
                "{what}: {bytes} bytes needed, {free} free on the GPU"
            )));
        }
        self.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: plain device allocation; freed in Buffer's Drop.
        let ptr = unsafe { result::malloc_sync(bytes.max(1)) }.map_err(|e| {
            if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
                KernelError::OutOfMemory(format!("{what}: {bytes} bytes"))
            } else {
                driver_error(e)
            }
        })?;
        Ok(Buffer { ptr, bytes })
    }

    /// Fills `count` elements at `ptr` with seeded random values uniform in ±`bound` (a power
    /// of two), never zero, rounded to the element type.
    pub fn fill(
        &self,
        ptr: u64,
        count: usize,
        elem: ElemType,
        bound: f32,
        seed: u64,
    ) -> Result<(), KernelError> {
        // The generator makes integers in ±2^23, scaled by a power of two.
        let scale = bound / (1u32 << 23) as f32;
        let n = count as u64;
        let f = self.function(elem.fill_kernel())?;
        let cfg = self.persistent_grid(4, 256);
        let mut launch = self.stream.launch_builder(f);
        launch.arg(&ptr).arg(&n).arg(&seed);
        let offset = 1.0f64;
        if elem == ElemType::F64 {
            // Bandwidth arrays: values in [0.5, 1.5), so sums never cancel.
            launch.arg(&offset);
        }
        launch.arg(&scale);
        // SAFETY: the fill kernels take (pointer, count, seed[, offset], scale) and write
        // `count` elements of `elem` at `ptr`, which the caller allocated.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }

    /// A `rows`×`cols` weight matrix of seeded random values in ±(the power of two at most
    /// 1/√cols): scaled by fan-in, so activations stay O(1) through a stack of projections.
    pub fn random_weights(
        &self,
        rows: u64,
        cols: u64,
        elem: ElemType,
        seed: u64,
        what: &str,
    ) -> Result<Buffer, KernelError> {
        let buf = self.alloc((rows * cols) as usize * elem.size_bytes(), what)?;
        let bound = crate::host::power_of_two_at_most(1.0 / (cols as f64).sqrt());
        self.fill(buf.ptr, (rows * cols) as usize, elem, bound, seed)?;
        Ok(buf)
    }

    /// Copies `count` elements starting at element `first` of `ptr` to the host, as f64.
    pub fn download(
        &self,
        ptr: u64,
        elem: ElemType,
        first: usize,
        count: usize,
    ) -> Result<Vec<f64>, KernelError> {
        let size = elem.size_bytes();
        let mut raw = vec![0u8; count * size];
        self.stream.synchronize().map_err(driver_error)?;
        // Interconnect kernels leave other GPUs' contexts current on this thread.
        self.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: the caller's buffer holds at least first + count elements.
        unsafe { result::memcpy_dtoh_sync(&mut raw, ptr + (first * size) as u64) }
            .map_err(driver_error)?;
        Ok(elem.decode(&raw))
    }

    pub fn synchronize(&self) -> Result<(), KernelError> {
        self.stream.synchronize().map_err(driver_error)
    }

    /// Times `iterations` samples of `group` back-to-back calls of `run`, with one pair of CUDA
    /// events around each group; a sample is the group's time divided by `group`.
    pub fn time(
        &self,
        iterations: u32,
        group: u32,
        mut run: impl FnMut() -> Result<(), KernelError>,
    ) -> Result<Vec<f64>, KernelError> {
        let mut events = self.events.borrow_mut();
        while events.len() <= iterations as usize {
            events.push(
                self.ctx
                    .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                    .map_err(driver_error)?,
            );
        }
        events[0].record(&self.stream).map_err(driver_error)?;
        for i in 0..iterations as usize {
            for _ in 0..group {
                run()?;
            }
            events[i + 1].record(&self.stream).map_err(driver_error)?;
        }
        events[iterations as usize]
            .synchronize()
            .map_err(driver_error)?;
        // Read right after the batch, while the clock is still the one it ran at.
        if self.recording.get()
            && let Some(reading) = self.telemetry.as_ref().and_then(Telemetry::read)
        {
            self.readings.borrow_mut().push(reading);
        }
        (0..iterations as usize)
            .map(|i| {
                let ms = events[i].elapsed_ms(&events[i + 1]).map_err(driver_error)?;
                Ok(ms as f64 * 1e-3 / group as f64)
            })
            .collect()
    }

    /// Keeps calling `run` for `seconds` of wall time, synchronising every few milliseconds so
    /// the queue stays short: brings the GPU to its sustained (power-capped) clock before
    /// something is timed or ranked.
    pub fn run_for(
        &self,
        seconds: f64,
        mut run: impl FnMut() -> Result<(), KernelError>,
    ) -> Result<(), KernelError> {
        let start = std::time::Instant::now();
        while start.elapsed().as_secs_f64() < seconds {
            for _ in 0..4 {
                run()?;
            }
            self.stream.synchronize().map_err(driver_error)?;
        }
        Ok(())
    }

    /// How many launches to time as one sample: enough to span ~100 µs, because a single
    /// launch of a few microseconds is within the event resolution and launch jitter.
    pub fn group_for(
        &self,
        mut run: impl FnMut() -> Result<(), KernelError>,
    ) -> Result<u32, KernelError> {
        let once = self.time(3, 1, &mut run)?;
        let t = once.iter().cloned().fold(f64::INFINITY, f64::min);
        Ok(((100e-6 / t).ceil() as u32).clamp(1, 64))
    }
}

/// The `timing` detail of a kernel whose samples are groups of `group` back-to-back `runs`
/// ("launches", "passes") divided evenly; nothing when each sample is one run.
pub fn grouped_timing_detail(group: u32, runs: &str) -> Option<(String, String)> {
    (group > 1).then(|| {
        (
            "timing".to_string(),
            format!(
                "each sample is {group} back-to-back {runs} timed by one CUDA event pair, divided by {group}"
            ),
        )
    })
}

/// A device allocation, freed on drop.
pub struct Buffer {
    pub ptr: u64,
    pub bytes: usize,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from malloc_sync and is freed once. Work still queued on it is
        // finished first because free synchronises the device.
        unsafe {
            let _ = result::free_sync(self.ptr);
        }
    }
}

pub fn driver_error(e: result::DriverError) -> KernelError {
    if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        return KernelError::OutOfMemory("the CUDA driver is out of device memory".into());
    }
    let name = e
        .error_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0));
    KernelError::Backend(format!("CUDA driver: {name}"))
}

fn read_info(ctx: &Arc<CudaContext>) -> Result<DeviceInfo, OpenError> {
    let err = |e: result::DriverError| OpenError::Driver(format!("{e:?}"));
    let attr = |a: CUdevice_attribute| ctx.attribute(a).ok().filter(|v| *v > 0).map(|v| v as u32);
    let mut driver = 0i32;
    // SAFETY: writes one int.
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut driver) };
    let (mut major, mut minor) = (0i32, 0i32);
    // SAFETY: writes two ints.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    // SAFETY: a plain query.
    let lt = unsafe { cudarc::cublaslt::sys::cublasLtGetVersion() };
    Ok(DeviceInfo {
        name: ctx.name().map_err(err)?,
        compute_capability: ctx.compute_capability().map_err(err)?,
        sm_count: attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).unwrap_or(1),
        memory_bytes: ctx.total_mem().map_err(err)? as u64,
        l2_bytes: attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).unwrap_or(0) as u64,
        sm_clock_mhz: attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)
            .map(|khz| khz / 1000),
        memory_clock_mhz: attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)
            .map(|khz| khz / 1000),
        memory_bus_bits: attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH),
        driver_api_version: format!("{}.{}", driver / 1000, (driver % 1000) / 10),
        driver_release: std::fs::read_to_string("/proc/driver/nvidia/version")
            .ok()
            .and_then(|text| parse_driver_release(&text)),
        nvrtc_version: format!("{major}.{minor}"),
        cublaslt_version: format!("{}.{}.{}", lt / 10000, (lt / 100) % 100, lt % 100),
    })
}

/// The device's PCI address (`0000:00:05.0`), which NVML looks devices up by.
pub fn pci_bus_id(ctx: &Arc<CudaContext>) -> Option<String> {
    let mut buffer = [0 as std::ffi::c_char; 32];
    // SAFETY: writes a NUL-terminated string of at most `len` bytes into the buffer.
    let status = unsafe {
        cudarc::driver::sys::cuDeviceGetPCIBusId(
            buffer.as_mut_ptr(),
            buffer.len() as i32,
            ctx.cu_device(),
        )
    };
    if status != CUresult::CUDA_SUCCESS {
        return None;
    }
    // SAFETY: the driver NUL-terminated it within the buffer.
    let text = unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) };
    Some(text.to_string_lossy().into_owned())
}

/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu ...` → `580.159.04`.
pub fn parse_driver_release(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version"))?;
    line.split_whitespace()
        .find(|w| {
            w.split('.').count() >= 2
                && w.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// Compiles `sources` for the device of `ctx` and loads their kernels by name.
pub fn compile<'s>(
    ctx: &Arc<CudaContext>,
    (major, minor): (i32, i32),
    sources: impl Iterator<Item = &'s Source>,
) -> Result<HashMap<&'static str, CudaFunction>, OpenError> {
    use cudarc::driver::sys::CUfunction_attribute;
    use cudarc::nvrtc::{CompileError, CompileOptions, compile_ptx_with_opts};
    let mut functions = HashMap::new();
    for source in sources {
        let options = CompileOptions {
            // PTX for the device's own architecture, finished by the driver's JIT.
            // Hopper (9.0) gets its architecture-specific features (`a`): wgmma.
            options: vec![
                format!(
                    "--gpu-architecture=compute_{major}{minor}{}",
                    if (major, minor) == (9, 0) { "a" } else { "" }
                ),
                "--std=c++17".into(),
            ],
            name: Some(source.file.to_string()),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(compilation_unit(source), options).map_err(|e| {
            OpenError::Compile {
                file: source.file,
                log: match e {
                    CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
                    other => format!("{other:?}"),
                },
            }
        })?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| OpenError::Driver(format!("loading {}: {e:?}", source.file)))?;
        for kernel in source.kernels {
            let f = module.load_function(kernel).map_err(|e| {
                OpenError::Driver(format!("{kernel} missing from {}: {e:?}", source.file))
            })?;
            // Each kernel's own need. The Hopper one (empty elsewhere) asks for 161 KiB, more
            // than some GPUs allow a block at all (99 KiB on compute capability 8.9).
            let hopper_only = kernel.starts_with("flash_attention_wgmma");
            if kernel.starts_with("flash_attention") && (!hopper_only || (major, minor) == (9, 0)) {
                let bytes = if hopper_only {
                    crate::sources::FLASH_WGMMA_SMEM_BYTES
                } else {
                    crate::sources::FLASH_SMEM_BYTES
                };
                f.set_attribute(
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    bytes as i32,
                )
                .map_err(|e| {
                    OpenError::Driver(format!("raising {kernel}'s shared memory: {e:?}"))
                })?;
            }
            functions.insert(*kernel, f);
        }
    }
    Ok(functions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_release_parses() {
        let text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu Oct  2 2025\nGCC version: gcc 12\n";
        assert_eq!(parse_driver_release(text).as_deref(), Some("580.159.04"));
        assert_eq!(parse_driver_release("nothing"), None);
    }
}
