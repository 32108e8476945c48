//! STREAM-style read, write, copy and triad over private-storage float4 arrays, rotated
//! between buffer sets when one set would fit in the system-level cache.

use super::gpu::{Buffer, Gpu, Storage};
use super::prepared::{Timed, Workload};
use super::program::{Dispatch, GpuParams, Grid, Step};
use crate::numeric::{self, Checks};
use crate::suite::buffer_sets;
use silirep_core::schema::Verification;
use silirep_core::{BandwidthOp, Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;

const THREADS_PER_GROUP: usize = 256;
/// Each read threadgroup reduces 16 float4 per thread: long enough to amortise the final
/// reduction, short enough for tens of thousands of groups to fill the GPU.
const READ_VECTORS_PER_GROUP: usize = THREADS_PER_GROUP * 16;
const WRITE_VALUE: f32 = 1.5; // outside the fill's [-1, 1], so a missed store shows
const TRIAD_SCALAR: f32 = 3.0; // STREAM's q
const CHECK_WINDOW_FLOATS: usize = 1024;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BandwidthParams {
    vector_count: u32,
    vectors_per_group: u32,
    scalar: f32,
    unused: u32,
}
// SAFETY: four 4-byte fields, mirrors BandwidthParams in bandwidth.metal.
unsafe impl GpuParams for BandwidthParams {}

pub(crate) fn prepare<'a>(
    gpu: &'a mut Gpu,
    op: BandwidthOp,
    array_bytes: u64,
    dtype: Dtype,
    cache_bytes: u64,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    if dtype != Dtype::F32 {
        return Err(KernelError::Unsupported(format!(
            "bandwidth kernels move float4 (f32) vectors; {dtype} would measure the same bytes"
        )));
    }
    if !array_bytes.is_multiple_of(16) || array_bytes == 0 {
        return Err(KernelError::Unsupported(format!(
            "array_bytes {array_bytes} is not a positive multiple of 16 (one float4)"
        )));
    }
    let vector_count = u32::try_from(array_bytes / 16).map_err(|_| {
        KernelError::Unsupported(format!("{array_bytes} bytes exceed 2³² float4 elements"))
    })?;
    let arrays = op.arrays_touched();
    let sets = buffer_sets(arrays * array_bytes, cache_bytes);
    gpu.ensure_fits(sets * arrays * array_bytes, "these bandwidth arrays")?;

    let floats = (array_bytes / 4) as usize;
    let vectors = vector_count as usize;
    let groups = vectors.div_ceil(READ_VECTORS_PER_GROUP);
    let pipeline = gpu.pipeline(match op {
        BandwidthOp::Read => "bandwidth_read",
        BandwidthOp::Write => "bandwidth_write",
        BandwidthOp::Copy => "bandwidth_copy",
        BandwidthOp::Triad => "bandwidth_triad",
    })?;
    let params = BandwidthParams {
        vector_count,
        vectors_per_group: READ_VECTORS_PER_GROUP as u32,
        scalar: if op == BandwidthOp::Triad {
            TRIAD_SCALAR
        } else {
            WRITE_VALUE
        },
        unused: 0,
    };
    let per_element = Grid::Threads {
        total: [vectors, 1, 1],
        group: [THREADS_PER_GROUP, 1, 1],
    };

    let mut sets_buffers = Vec::new();
    let mut programs = Vec::new();
    for set in 0..sets {
        let mut arrays_in_set = Vec::new();
        for array in 0..arrays {
            let array_seed = seed ^ (set << 8) ^ array;
            arrays_in_set.push(gpu.random_buffer(
                floats,
                dtype,
                Storage::Private,
                array_seed,
                1.0,
            )?);
        }
        // Read's per-group partial sums are tiny and read back by the check: shared.
        let partials = match op {
            BandwidthOp::Read => Some(gpu.buffer(groups * 4, Storage::Shared)?),
            _ => None,
        };
        let bind: Vec<(Buffer, usize)> = arrays_in_set
            .iter()
            .chain(partials.as_ref())
            .map(|b| (b.clone(), 0))
            .collect();
        let grid = match op {
            BandwidthOp::Read => Grid::Groups {
                count: [groups, 1, 1],
                group: [THREADS_PER_GROUP, 1, 1],
            },
            _ => per_element,
        };
        programs.push(vec![Step::Compute(Dispatch::new(
            pipeline.clone(),
            bind,
            &params,
            grid,
        )?)]);
        sets_buffers.push((arrays_in_set, partials));
    }
    let gpu: &Gpu = gpu;
    let (arrays_in_first, partials) = sets_buffers.swap_remove(0);
    let workload = Bandwidth {
        programs,
        op,
        arrays: arrays_in_first,
        partials,
        floats,
        groups,
        seed,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

struct Bandwidth {
    programs: Vec<Vec<Step>>,
    op: BandwidthOp,
    /// The first set's arrays, in kernel binding order.
    arrays: Vec<Buffer>,
    partials: Option<Buffer>,
    floats: usize,
    groups: usize,
    seed: u64,
}

impl Bandwidth {
    /// Elements `window·1024 ..` of array `index` of the first buffer set.
    fn window(&self, gpu: &Gpu, index: usize, window: usize) -> Result<Vec<f64>, KernelError> {
        let first = window * CHECK_WINDOW_FLOATS;
        let count = CHECK_WINDOW_FLOATS.min(self.floats - first);
        gpu.read(&self.arrays[index], Dtype::F32, first, count)
    }
}

impl Workload for Bandwidth {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let mut checks = Checks::default();
        let method = match self.op {
            BandwidthOp::Read => {
                let partials = self.partials.as_ref().expect("read has partial sums");
                for group in numeric::sample_indices(self.groups, 16, self.seed) {
                    let first = group * READ_VECTORS_PER_GROUP * 4;
                    let count = (READ_VECTORS_PER_GROUP * 4).min(self.floats - first);
                    let chunk = gpu.read(&self.arrays[0], Dtype::F32, first, count)?;
                    let expected: f64 = chunk.iter().sum();
                    let magnitude: f64 = chunk.iter().map(|v| v.abs()).sum();
                    let actual = gpu.read(partials, Dtype::F32, group, 1)?[0];
                    checks.dot(actual, expected, magnitude);
                }
                "16 sampled threadgroup partial sums vs f64 sums of their chunks"
            }
            _ => {
                let windows = self.floats.div_ceil(CHECK_WINDOW_FLOATS);
                for window in numeric::sample_indices(windows, 32, self.seed) {
                    match self.op {
                        BandwidthOp::Write => {
                            for value in self.window(gpu, 0, window)? {
                                checks.element(value, f64::from(WRITE_VALUE));
                            }
                        }
                        BandwidthOp::Copy => {
                            let source = self.window(gpu, 0, window)?;
                            let destination = self.window(gpu, 1, window)?;
                            for (d, s) in destination.iter().zip(&source) {
                                checks.element(*d, *s);
                            }
                        }
                        BandwidthOp::Triad => {
                            let a = self.window(gpu, 0, window)?;
                            let b = self.window(gpu, 1, window)?;
                            let c = self.window(gpu, 2, window)?;
                            for ((a, b), c) in a.iter().zip(&b).zip(&c) {
                                checks.element(*a, b + f64::from(TRIAD_SCALAR) * c);
                            }
                        }
                        BandwidthOp::Read => unreachable!(),
                    }
                }
                "32 sampled windows of 1024 elements vs the expected values"
            }
        };
        Ok(checks.finish(Dtype::F32, method))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("storage".into(), "private".into()),
            (
                "vector_width".into(),
                "float4 (16-byte loads/stores)".into(),
            ),
            (
                "threads_per_threadgroup".into(),
                THREADS_PER_GROUP.to_string(),
            ),
        ])
    }
}
