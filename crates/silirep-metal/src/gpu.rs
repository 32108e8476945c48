//! The Metal device, its command queue and compiled kernels, and the few ways this backend
//! talks to the GPU: allocate and fill buffers, encode a program (a list of compute
//! dispatches and MPS GEMMs) into command buffers, time it with the GPU's own timestamps, and
//! read results back for verification.

use super::program::{CommandBuffer, Dispatch, GpuParams, Grid, Step, encode};
use crate::numeric;
use crate::sources;
use objc2::rc::{Retained, autoreleasepool};
use objc2::runtime::ProtocolObject;
use objc2_foundation::NSString;
use objc2_metal::{
    MTLBlitCommandEncoder, MTLBuffer, MTLCommandBuffer, MTLCommandBufferStatus, MTLCommandEncoder,
    MTLCommandQueue, MTLComputePipelineState, MTLDevice, MTLLibrary, MTLResource,
    MTLResourceOptions, MTLStorageMode,
};
use silirep_core::{Dtype, KernelError};
use std::collections::HashMap;

pub(crate) type Device = ProtocolObject<dyn MTLDevice>;
pub(crate) type Buffer = Retained<ProtocolObject<dyn MTLBuffer>>;
pub(crate) type Pipeline = Retained<ProtocolObject<dyn MTLComputePipelineState>>;

/// Command buffers committed before the CPU waits for the oldest. Below the queue's default
/// limit of 64, so `commandBuffer` never blocks, and enough to keep the GPU busy.
const MAX_IN_FLIGHT: usize = 16;

/// Where a buffer lives. On Apple Silicon both are the same DRAM; private storage lets the
/// driver skip CPU-coherency bookkeeping and is what a bandwidth measurement should use,
/// shared storage lets the CPU read results without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Shared,
    Private,
}

pub(crate) struct Gpu {
    pub device: Retained<Device>,
    queue: Retained<ProtocolObject<dyn MTLCommandQueue>>,
    libraries: HashMap<&'static str, Retained<ProtocolObject<dyn MTLLibrary>>>,
    pipelines: HashMap<&'static str, Pipeline>,
}

pub(crate) fn backend_error(what: &str, detail: impl std::fmt::Display) -> KernelError {
    KernelError::Backend(format!("Metal: {what}: {detail}"))
}

impl Gpu {
    pub fn new(device: Retained<Device>) -> Result<Gpu, KernelError> {
        let queue = device
            .newCommandQueue()
            .ok_or_else(|| backend_error("newCommandQueue", "returned nil"))?;
        Ok(Gpu {
            device,
            queue,
            libraries: HashMap::new(),
            pipelines: HashMap::new(),
        })
    }

    /// The compute pipeline for kernel function `name`, compiling its `.metal` file on first
    /// use. Called from `prepare`, so compilation never lands in a timed iteration.
    pub fn pipeline(&mut self, name: &'static str) -> Result<Pipeline, KernelError> {
        if let Some(p) = self.pipelines.get(name) {
            return Ok(p.clone());
        }
        let source = sources::source_of(name)
            .ok_or_else(|| backend_error("unknown kernel function", name))?;
        if !self.libraries.contains_key(source.file) {
            let library = self
                .device
                .newLibraryWithSource_options_error(&NSString::from_str(source.text), None)
                .map_err(|e| {
                    backend_error(
                        &format!("compiling {}", source.file),
                        e.localizedDescription(),
                    )
                })?;
            self.libraries.insert(source.file, library);
        }
        let function = self.libraries[source.file]
            .newFunctionWithName(&NSString::from_str(name))
            .ok_or_else(|| backend_error(&format!("{} has no function", source.file), name))?;
        let pipeline = self
            .device
            .newComputePipelineStateWithFunction_error(&function)
            .map_err(|e| {
                backend_error(&format!("pipeline for {name}"), e.localizedDescription())
            })?;
        self.pipelines.insert(name, pipeline.clone());
        Ok(pipeline)
    }

    /// Fails with `OutOfMemory` when `bytes` more would exceed the working set Metal
    /// recommends (beyond it the OS pages GPU memory and timings measure the pager).
    pub fn ensure_fits(&self, bytes: u64, what: &str) -> Result<(), KernelError> {
        let limit = self.device.recommendedMaxWorkingSetSize();
        let in_use = self.device.currentAllocatedSize() as u64;
        if bytes.saturating_add(in_use) > limit {
            return Err(KernelError::OutOfMemory(format!(
                "{what} needs {:.2} GB; Metal's recommended working set is {:.2} GB \
                 ({:.2} GB already allocated)",
                bytes as f64 / 1e9,
                limit as f64 / 1e9,
                in_use as f64 / 1e9
            )));
        }
        Ok(())
    }

    pub fn buffer(&self, bytes: usize, storage: Storage) -> Result<Buffer, KernelError> {
        let max = self.device.maxBufferLength();
        if bytes > max {
            return Err(KernelError::OutOfMemory(format!(
                "a {bytes}-byte buffer exceeds this device's maxBufferLength of {max} bytes"
            )));
        }
        let options = match storage {
            Storage::Shared => MTLResourceOptions::StorageModeShared,
            Storage::Private => MTLResourceOptions::StorageModePrivate,
        };
        self.device
            .newBufferWithLength_options(bytes.max(16), options)
            .ok_or_else(|| KernelError::OutOfMemory(format!("Metal refused a {bytes}-byte buffer")))
    }

    /// A buffer of `count` random non-zero elements (magnitudes in [0.25, 1]·`scale`, random
    /// signs), generated on the GPU from `seed`.
    pub fn random_buffer(
        &mut self,
        count: usize,
        dtype: Dtype,
        storage: Storage,
        seed: u64,
        scale: f32,
    ) -> Result<Buffer, KernelError> {
        let buffer = self.buffer(count * numeric::element_bytes(dtype), storage)?;
        if count == 0 {
            return Ok(buffer);
        }
        let name = match dtype {
            Dtype::F32 => "fill_random_f32",
            Dtype::F16 => "fill_random_f16",
            Dtype::Bf16 => "fill_random_bf16",
            other => return Err(KernelError::Unsupported(format!("no {other} fill kernel"))),
        };
        let count_u32 = u32::try_from(count)
            .map_err(|_| KernelError::Unsupported(format!("{count} elements in one buffer")))?;
        let params = FillParams {
            count: count_u32,
            seed_low: seed as u32,
            seed_high: (seed >> 32) as u32,
            scale,
        };
        let fill = Dispatch::new(
            self.pipeline(name)?,
            vec![(buffer.clone(), 0)],
            &params,
            Grid::threads_1d(count),
        )?;
        self.run_once(&[Step::Compute(fill)])?;
        Ok(buffer)
    }

    /// Runs `program` once and waits for it.
    pub fn run_once(&self, program: &[Step]) -> Result<(), KernelError> {
        autoreleasepool(|_| {
            let command_buffer = self.command_buffer()?;
            encode(&command_buffer, program)?;
            command_buffer.commit();
            finish(&command_buffer).map(|_| ())
        })
    }

    /// Runs `iterations` command buffers, each holding `repeats` consecutive programs from
    /// the rotation `programs` (starting at `first`), and returns each buffer's GPU time
    /// divided by `repeats`.
    pub fn time(
        &self,
        programs: &[Vec<Step>],
        first: usize,
        iterations: u32,
        repeats: u32,
    ) -> Result<Vec<f64>, KernelError> {
        let mut times_s = Vec::with_capacity(iterations as usize);
        let mut next = first;
        while times_s.len() < iterations as usize {
            let batch = (iterations as usize - times_s.len()).min(MAX_IN_FLIGHT);
            autoreleasepool(|_| -> Result<(), KernelError> {
                let mut in_flight = Vec::with_capacity(batch);
                for _ in 0..batch {
                    let command_buffer = self.command_buffer()?;
                    for _ in 0..repeats {
                        encode(&command_buffer, &programs[next % programs.len()])?;
                        next += 1;
                    }
                    command_buffer.commit();
                    in_flight.push(command_buffer);
                }
                for command_buffer in &in_flight {
                    let gpu_s = finish(command_buffer)?;
                    // Some virtual GPUs report no timestamps (both zero); a CPU clock would
                    // measure something else, so say so instead of substituting one.
                    if gpu_s.is_nan() || gpu_s <= 0.0 {
                        return Err(backend_error(
                            "no GPU timestamps",
                            format!("GPUEndTime − GPUStartTime = {gpu_s} s"),
                        ));
                    }
                    times_s.push(gpu_s / f64::from(repeats));
                }
                Ok(())
            })?;
        }
        Ok(times_s)
    }

    fn command_buffer(&self) -> Result<Retained<CommandBuffer>, KernelError> {
        self.queue
            .commandBuffer()
            .ok_or_else(|| backend_error("commandBuffer", "returned nil"))
    }

    /// `count` elements of `dtype` starting at element `first`, as f64. Private buffers are
    /// copied to a shared staging buffer with a blit first.
    pub fn read(
        &self,
        buffer: &Buffer,
        dtype: Dtype,
        first: usize,
        count: usize,
    ) -> Result<Vec<f64>, KernelError> {
        let size = numeric::element_bytes(dtype);
        let offset = first * size;
        let bytes = count * size;
        if offset + bytes > buffer.length() {
            return Err(backend_error(
                "read past the end of a buffer",
                format!("{} + {bytes} > {}", offset, buffer.length()),
            ));
        }
        if buffer.storageMode() == MTLStorageMode::Shared {
            return Ok(numeric::decode(
                &shared_bytes(buffer)[offset..offset + bytes],
                dtype,
            ));
        }
        let staging = self.buffer(bytes, Storage::Shared)?;
        autoreleasepool(|_| {
            let command_buffer = self.command_buffer()?;
            let blit = command_buffer
                .blitCommandEncoder()
                .ok_or_else(|| backend_error("blitCommandEncoder", "returned nil"))?;
            // SAFETY: both ranges were bounds-checked above.
            unsafe {
                blit.copyFromBuffer_sourceOffset_toBuffer_destinationOffset_size(
                    buffer, offset, &staging, 0, bytes,
                );
            }
            blit.endEncoding();
            command_buffer.commit();
            finish(&command_buffer).map(|_| ())
        })?;
        Ok(numeric::decode(&shared_bytes(&staging)[..bytes], dtype))
    }

    /// Elements at `indices` of a shared buffer, as f64 (a column of a row-major matrix,
    /// without copying the whole matrix).
    pub fn gather(
        &self,
        buffer: &Buffer,
        dtype: Dtype,
        indices: impl Iterator<Item = usize>,
    ) -> Result<Vec<f64>, KernelError> {
        if buffer.storageMode() != MTLStorageMode::Shared {
            return Err(backend_error("gather", "needs a shared-storage buffer"));
        }
        let size = numeric::element_bytes(dtype);
        let bytes = shared_bytes(buffer);
        indices
            .map(|i| {
                bytes
                    .get(i * size..(i + 1) * size)
                    .map(|element| numeric::decode(element, dtype)[0])
                    .ok_or_else(|| backend_error("gather past the end of a buffer", i))
            })
            .collect()
    }
}

/// Waits for `command_buffer` and returns its GPU execution time in seconds.
fn finish(command_buffer: &CommandBuffer) -> Result<f64, KernelError> {
    command_buffer.waitUntilCompleted();
    if command_buffer.status() != MTLCommandBufferStatus::Completed {
        let reason = command_buffer
            .error()
            .map(|e| e.localizedDescription().to_string())
            .unwrap_or_else(|| format!("status {:?}", command_buffer.status()));
        // Metal reports GPU out-of-memory as a command-buffer error, not at allocation.
        let lower = reason.to_lowercase();
        return Err(if lower.contains("memory") {
            KernelError::OutOfMemory(format!("Metal command buffer failed: {reason}"))
        } else {
            backend_error("command buffer failed", reason)
        });
    }
    // GPUStartTime/GPUEndTime: when the GPU began and finished this command buffer, in
    // seconds of the host's mach_absolute_time clock, taken by the GPU itself, so CPU-side
    // encoding and scheduling latency are excluded.
    Ok(command_buffer.GPUEndTime() - command_buffer.GPUStartTime())
}

fn shared_bytes(buffer: &Buffer) -> &[u8] {
    // SAFETY: shared buffers are CPU-visible for their whole length; callers only read
    // after the command buffers writing them have completed.
    unsafe { std::slice::from_raw_parts(buffer.contents().as_ptr().cast::<u8>(), buffer.length()) }
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct FillParams {
    pub count: u32,
    pub seed_low: u32,
    pub seed_high: u32,
    pub scale: f32,
}
// SAFETY: four 4-byte fields, mirrors FillParams in fill.metal.
unsafe impl GpuParams for FillParams {}
