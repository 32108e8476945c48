//! STREAM-style read, write, copy and triad over f64 arrays in device memory, with 16-byte
//! accesses from a persistent grid. The suite sizes arrays at ≥ 5× the L2 cache, so every
//! iteration streams from HBM; bytes are counted by silirep-core's STREAM rule.

use crate::device::{Buffer, Gpu, driver_error};
use crate::host::{ElemType, Rng};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{BandwidthOp, KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// The triad scalar.
const Q: f64 = 3.0;
const THREADS: u32 = 256;
/// 8 blocks of 256 threads: 2048 threads, the most an H100 SM holds.
const BLOCKS_PER_SM: u32 = 8;
/// double2 per copy block: `COPY_UNROLL`·`THREADS` (bandwidth.cu).
const COPY_TILE: u64 = 2 * THREADS as u64;

pub struct Bandwidth<'a> {
    gpu: &'a Gpu,
    op: BandwidthOp,
    elements: usize,
    a: Buffer,
    b: Option<Buffer>,
    c: Option<Buffer>,
    partials: Buffer,
    write_value: f64,
    group: u32,
}

impl<'a> Bandwidth<'a> {
    pub fn prepare(
        gpu: &'a Gpu,
        op: BandwidthOp,
        array_bytes: u64,
        seed: u64,
    ) -> Result<Bandwidth<'a>, KernelError> {
        if array_bytes == 0 || !array_bytes.is_multiple_of(16) {
            return Err(KernelError::Unsupported(format!(
                "array_bytes {array_bytes}: must be a positive multiple of 16 (double2 accesses)"
            )));
        }
        let bytes = array_bytes as usize;
        let elements = bytes / 8;
        let arrays = op.arrays_touched();
        if arrays * array_bytes + (1 << 30) > gpu.free_bytes() {
            return Err(KernelError::OutOfMemory(format!(
                "{arrays} arrays of {array_bytes} bytes do not fit on the GPU"
            )));
        }
        let make = |index: u64, what: &str| -> Result<Buffer, KernelError> {
            let buf = gpu.alloc(bytes, what)?;
            gpu.fill(buf.ptr, elements, ElemType::F64, 0.5, seed ^ (index << 56))?;
            Ok(buf)
        };
        let a = make(0, "bandwidth array a")?;
        let b = if arrays >= 2 {
            Some(make(1, "bandwidth array b")?)
        } else {
            None
        };
        let c = if arrays >= 3 {
            Some(make(2, "bandwidth array c")?)
        } else {
            None
        };
        let partials = gpu.alloc(
            (gpu.info.sm_count * BLOCKS_PER_SM) as usize * 8,
            "read partial sums",
        )?;
        let mut kernel = Bandwidth {
            gpu,
            op,
            elements,
            a,
            b,
            c,
            partials,
            write_value: 1.0,
            group: 1,
        };
        kernel.group = gpu.group_for(|| kernel.run_once())?;
        Ok(kernel)
    }

    fn run_once(&mut self) -> Result<(), KernelError> {
        let gpu = self.gpu;
        let n2 = (self.elements / 2) as u64;
        let cfg = if self.op == BandwidthOp::Copy {
            // One block per tile: bandwidth.cu says why copy differs.
            LaunchConfig {
                grid_dim: (n2.div_ceil(COPY_TILE) as u32, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            }
        } else {
            gpu.persistent_grid(BLOCKS_PER_SM, THREADS)
        };
        let a = self.a.ptr;
        let b = self.b.as_ref().map_or(0, |b| b.ptr);
        let c = self.c.as_ref().map_or(0, |c| c.ptr);
        let name = match self.op {
            BandwidthOp::Read => "bandwidth_read",
            BandwidthOp::Write => "bandwidth_write",
            BandwidthOp::Copy => "bandwidth_copy",
            BandwidthOp::Triad => "bandwidth_triad",
        };
        let f = gpu.function(name)?;
        let mut launch = gpu.stream.launch_builder(f);
        // A new value every iteration, so no store is redundant.
        self.write_value += 1.0;
        let value = self.write_value;
        let partials = self.partials.ptr;
        match self.op {
            BandwidthOp::Read => launch.arg(&a).arg(&n2).arg(&partials),
            BandwidthOp::Write => launch.arg(&a).arg(&n2).arg(&value),
            BandwidthOp::Copy => launch.arg(&a).arg(&b).arg(&n2),
            BandwidthOp::Triad => launch.arg(&a).arg(&b).arg(&c).arg(&n2).arg(&Q),
        };
        // SAFETY: argument lists match bandwidth.cu; every array holds `elements` f64.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }
}

impl PreparedKernel for Bandwidth<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let gpu = self.gpu;
        let group = self.group;
        gpu.time(iterations, group, || self.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once()?;
        let gpu = self.gpu;
        let mut rng = Rng::new(0xb1d);
        let picks = rng.distinct(self.elements, 256);
        let sample = |buf: &Buffer| -> Result<Vec<f64>, KernelError> {
            picks
                .iter()
                .map(|&i| Ok(gpu.download(buf.ptr, ElemType::F64, i, 1)?[0]))
                .collect()
        };
        Ok(match self.op {
            BandwidthOp::Read => {
                let blocks = (gpu.info.sm_count * BLOCKS_PER_SM) as usize;
                let device_sum: f64 = gpu
                    .download(self.partials.ptr, ElemType::F64, 0, blocks)?
                    .iter()
                    .sum();
                // The whole array, summed on the host in 32 MiB pieces.
                let chunk = 4 << 20;
                let mut host_sum = 0.0;
                let mut first = 0;
                while first < self.elements {
                    let count = chunk.min(self.elements - first);
                    host_sum += gpu
                        .download(self.a.ptr, ElemType::F64, first, count)?
                        .iter()
                        .sum::<f64>();
                    first += count;
                }
                compare_outputs(
                    &[device_sum],
                    &[host_sum],
                    1e-9,
                    "device sum (block partials) vs an f64 host sum of the whole array",
                )
            }
            BandwidthOp::Write => compare_outputs(
                &sample(&self.a)?,
                &vec![self.write_value; picks.len()],
                0.0,
                "256 sampled entries hold the written value",
            ),
            BandwidthOp::Copy => {
                let b = self.b.as_ref().expect("copy has b");
                compare_outputs(
                    &sample(b)?,
                    &sample(&self.a)?,
                    0.0,
                    "256 sampled entries equal the source",
                )
            }
            BandwidthOp::Triad => {
                let (b, c) = (
                    sample(self.b.as_ref().expect("b"))?,
                    sample(self.c.as_ref().expect("c"))?,
                );
                let expected: Vec<f64> = b.iter().zip(&c).map(|(b, c)| b + Q * c).collect();
                // 1e-15: the device may fuse b + q·c into one FMA (a different last bit).
                compare_outputs(
                    &sample(&self.a)?,
                    &expected,
                    1e-15,
                    "256 sampled entries equal b + q·c",
                )
            }
        })
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            ("element".into(), "f64, 16-byte double2 accesses".into()),
            (
                "grid".into(),
                if self.op == BandwidthOp::Copy {
                    format!(
                        "one block of {THREADS} threads per tile of {COPY_TILE} consecutive double2 (2 loads in flight per thread), {} blocks",
                        (self.elements as u64 / 2).div_ceil(COPY_TILE)
                    )
                } else {
                    format!(
                        "{} SMs × {BLOCKS_PER_SM} blocks × {THREADS} threads; blocks walk tiles of 4·{THREADS} consecutive double2 (4 loads in flight per thread)",
                        self.gpu.info.sm_count
                    )
                },
            ),
            ("l2_bytes".into(), self.gpu.info.l2_bytes.to_string()),
        ]);
        d.extend(crate::device::grouped_timing_detail(self.group, "launches"));
        d
    }
}
