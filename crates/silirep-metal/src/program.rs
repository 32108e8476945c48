//! A program: the list of GPU steps one iteration runs (compute dispatches of this crate's
//! kernels and MPS matrix kernels), and how it is encoded into a command buffer.

use super::gpu::{Buffer, Pipeline, backend_error};
use super::mps::{MatMul, MatVec};
use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_metal::{
    MTLBlitCommandEncoder, MTLCommandBuffer, MTLCommandEncoder, MTLComputeCommandEncoder,
    MTLComputePipelineState, MTLSize,
};
use silirep_core::KernelError;
use std::ptr::NonNull;

pub(super) type CommandBuffer = ProtocolObject<dyn MTLCommandBuffer>;
type ComputeEncoder = ProtocolObject<dyn MTLComputeCommandEncoder>;

/// One unit of GPU work in a program.
pub(crate) enum Step {
    Compute(Dispatch),
    Gemm(MatMul),
    Gemv(MatVec),
    /// A blit-encoder copy of the first `bytes` of `from` into `to`.
    Blit {
        from: Buffer,
        to: Buffer,
        bytes: usize,
    },
}

/// Encodes `program` into `command_buffer`: consecutive compute dispatches share one
/// encoder, which is closed before each MPS kernel (MPS encodes its own).
pub(super) fn encode(command_buffer: &CommandBuffer, program: &[Step]) -> Result<(), KernelError> {
    let mut encoder: Option<Retained<ComputeEncoder>> = None;
    for step in program {
        if let Step::Compute(dispatch) = step {
            let active = match encoder {
                Some(ref e) => e,
                None => encoder.insert(
                    command_buffer
                        .computeCommandEncoder()
                        .ok_or_else(|| backend_error("computeCommandEncoder", "returned nil"))?,
                ),
            };
            dispatch.encode(active);
            continue;
        }
        if let Some(e) = encoder.take() {
            e.endEncoding();
        }
        match step {
            Step::Gemm(matmul) => matmul.encode(command_buffer),
            Step::Gemv(matvec) => matvec.encode(command_buffer),
            Step::Blit { from, to, bytes } => {
                let blit = command_buffer
                    .blitCommandEncoder()
                    .ok_or_else(|| backend_error("blitCommandEncoder", "returned nil"))?;
                // SAFETY: both buffers were allocated with at least `bytes` bytes by the
                // workload that built this step, and outlive the command buffer.
                unsafe {
                    blit.copyFromBuffer_sourceOffset_toBuffer_destinationOffset_size(
                        from, 0, to, 0, *bytes,
                    );
                }
                blit.endEncoding();
            }
            Step::Compute(_) => unreachable!("handled above"),
        }
    }
    if let Some(e) = encoder.take() {
        e.endEncoding();
    }
    Ok(())
}

/// Marks `#[repr(C)]` structs of 4-byte fields (no padding) that mirror a Metal parameter
/// struct, so their bytes can be handed to `setBytes`.
///
/// # Safety
/// The type must be `#[repr(C)]`, contain no padding and no pointers.
pub(crate) unsafe trait GpuParams: Copy {}

pub(crate) struct Dispatch {
    pipeline: Pipeline,
    /// Bound at indices 0, 1, ... with their byte offsets; the parameters follow them.
    buffers: Vec<(Buffer, usize)>,
    params: Vec<u8>,
    grid: Grid,
}

impl Dispatch {
    pub fn new<P: GpuParams>(
        pipeline: Pipeline,
        buffers: Vec<(Buffer, usize)>,
        params: &P,
        grid: Grid,
    ) -> Result<Dispatch, KernelError> {
        // Kernels launched by threadgroup count rely on their threadgroup size (attention
        // maps SIMD groups to query rows), so a pipeline that cannot run that many threads
        // is an error, not something to shrink silently.
        if let Grid::Groups { group, .. } = grid {
            let requested = group.iter().product::<usize>();
            let max = pipeline.maxTotalThreadsPerThreadgroup();
            if requested > max {
                return Err(backend_error(
                    "threadgroup too large",
                    format!("{requested} threads requested, the pipeline allows {max}"),
                ));
            }
        }
        // SAFETY: GpuParams guarantees a padding-free plain-data layout.
        let bytes = unsafe {
            std::slice::from_raw_parts((params as *const P).cast::<u8>(), size_of::<P>())
        };
        Ok(Dispatch {
            pipeline,
            buffers,
            params: bytes.to_vec(),
            grid,
        })
    }

    fn encode(&self, encoder: &ComputeEncoder) {
        encoder.setComputePipelineState(&self.pipeline);
        for (index, (buffer, offset)) in self.buffers.iter().enumerate() {
            // SAFETY: indices match the kernel's [[buffer(n)]] declarations (one Dispatch per
            // kernel signature, built next to it); the buffer outlives the encoding.
            unsafe { encoder.setBuffer_offset_atIndex(Some(buffer), *offset, index) };
        }
        let params = NonNull::new(self.params.as_ptr().cast_mut().cast()).expect("non-null");
        // SAFETY: `params` points at `self.params.len()` initialised bytes; Metal copies them.
        unsafe { encoder.setBytes_length_atIndex(params, self.params.len(), self.buffers.len()) };
        let max_threads = self.pipeline.maxTotalThreadsPerThreadgroup();
        match self.grid {
            Grid::Threads { total, group } => encoder.dispatchThreads_threadsPerThreadgroup(
                size(total),
                size(clamp(group, max_threads)),
            ),
            Grid::Groups { count, group } => {
                encoder.dispatchThreadgroups_threadsPerThreadgroup(size(count), size(group))
            }
        }
    }
}

/// How many threads a dispatch launches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grid {
    /// Exactly `total` threads (Apple GPUs allow a partial last threadgroup).
    Threads {
        total: [usize; 3],
        group: [usize; 3],
    },
    /// `count` threadgroups of `group` threads; kernels that rely on the threadgroup size
    /// (reductions, attention tiles) use this.
    Groups {
        count: [usize; 3],
        group: [usize; 3],
    },
}

impl Grid {
    pub fn threads_1d(total: usize) -> Grid {
        Grid::Threads {
            total: [total, 1, 1],
            group: [256, 1, 1],
        }
    }
}

fn size([width, height, depth]: [usize; 3]) -> MTLSize {
    MTLSize {
        width,
        height,
        depth,
    }
}

/// Threadgroup sizes of one-thread-per-element kernels are a tuning choice; a pipeline that
/// uses many registers may allow fewer threads, so shrink the first dimension to fit.
fn clamp([x, y, z]: [usize; 3], max_threads: usize) -> [usize; 3] {
    let other = (y * z).max(1);
    [x.min((max_threads / other).max(1)), y, z]
}
