//! Host↔device copies (`cuMemcpyHtoDAsync` / `cuMemcpyDtoHAsync` on the GPU's stream) from
//! and to pinned memory (`cuMemHostAlloc`: the copy engine reads it directly) and pageable
//! memory (an ordinary allocation the driver stages through its own pinned buffers) — the
//! PCIe (or C2C) link to the host, the roof of offloading and data loading.

use crate::device::driver_error;
use crate::host::Rng;
use crate::peers::{PatternElem, PeerBuffer, Peers};
use cudarc::driver::{result, sys};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Topology, Verification};
use silirep_core::{HostMemory, KernelError, PreparedKernel, TransferDirection};
use std::collections::BTreeMap;
use std::ffi::c_void;

/// Host memory of one transfer, freed on drop.
enum HostBuffer {
    Pinned { ptr: *mut c_void },
    Pageable(Vec<u8>),
}

impl HostBuffer {
    fn as_mut_ptr(&mut self) -> *mut c_void {
        match self {
            HostBuffer::Pinned { ptr } => *ptr,
            HostBuffer::Pageable(v) => v.as_mut_ptr() as *mut c_void,
        }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        if let HostBuffer::Pinned { ptr } = self {
            // SAFETY: allocated by cuMemHostAlloc, freed once.
            unsafe {
                let _ = result::free_host(*ptr);
            }
        }
    }
}

pub struct HostTransfer<'a> {
    peers: &'a Peers,
    device: u32,
    direction: TransferDirection,
    memory: HostMemory,
    bytes: usize,
    host: HostBuffer,
    gpu: PeerBuffer,
    group: u32,
}

impl<'a> HostTransfer<'a> {
    pub fn prepare(
        peers: &'a Peers,
        direction: TransferDirection,
        memory: HostMemory,
        device: u32,
        bytes: u64,
        seed: u64,
    ) -> Result<HostTransfer<'a>, KernelError> {
        if bytes == 0 || !bytes.is_multiple_of(4) {
            return Err(KernelError::Unsupported(format!(
                "{bytes} bytes: host transfers are whole 4-byte words"
            )));
        }
        let d = peers.device(device)?;
        let bytes = bytes as usize;
        let gpu = d.alloc(bytes, "host transfer device buffer")?;
        d.fill_pattern(gpu.ptr, bytes / 4, PatternElem::F32, seed % 1024)?;
        d.ctx.bind_to_thread().map_err(driver_error)?;
        let mut host = match memory {
            // SAFETY: a plain pinned allocation, freed in HostBuffer's Drop.
            HostMemory::Pinned => HostBuffer::Pinned {
                ptr: unsafe { result::malloc_host(bytes, 0) }.map_err(|e| {
                    KernelError::OutOfMemory(format!(
                        "{bytes} bytes of pinned host memory: {}",
                        driver_error(e)
                    ))
                })?,
            },
            HostMemory::Pageable => {
                let mut v = Vec::new();
                v.try_reserve_exact(bytes).map_err(|_| {
                    KernelError::OutOfMemory(format!("{bytes} bytes of host memory"))
                })?;
                v.resize(bytes, 0);
                HostBuffer::Pageable(v)
            }
        };
        // Every page written once before timing, so first-touch faults are not timed.
        // SAFETY: the buffer holds `bytes` bytes.
        let slice = unsafe { std::slice::from_raw_parts_mut(host.as_mut_ptr() as *mut u8, bytes) };
        for (i, b) in slice.iter_mut().enumerate() {
            *b = (i as u64).wrapping_mul(0x9e37).wrapping_add(seed) as u8;
        }
        d.synchronize()?;
        let mut kernel = HostTransfer {
            peers,
            device,
            direction,
            memory,
            bytes,
            host,
            gpu,
            group: 1,
        };
        kernel.group = peers.group_for(&[device], crate::peers::SHORT_SAMPLE_S, || {
            kernel.run_once()
        })?;
        Ok(kernel)
    }

    fn run_once(&mut self) -> Result<(), KernelError> {
        let d = self.peers.device(self.device)?;
        // NCCL and the other GPUs' work leave another context current on this thread.
        d.ctx.bind_to_thread().map_err(driver_error)?;
        let stream = d.stream.cu_stream();
        let host = self.host.as_mut_ptr();
        // SAFETY: both buffers hold `bytes` bytes; pinned memory stays allocated until the
        // kernel is dropped, after its stream work finished (free synchronises).
        unsafe {
            match self.direction {
                TransferDirection::HostToDevice => {
                    sys::cuMemcpyHtoDAsync_v2(self.gpu.ptr, host, self.bytes, stream)
                }
                TransferDirection::DeviceToHost => {
                    sys::cuMemcpyDtoHAsync_v2(host, self.gpu.ptr, self.bytes, stream)
                }
            }
        }
        .result()
        .map_err(driver_error)
    }
}

impl PreparedKernel for HostTransfer<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let (peers, device, group) = (self.peers, self.device, self.group);
        peers.time(&[device], iterations, group, || self.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        let d = self.peers.device(self.device)?;
        let bytes = self.bytes;
        // Poison the destination, copy once, compare sampled words of both ends.
        match self.direction {
            TransferDirection::HostToDevice => d.poison(self.gpu.ptr, bytes, 0xff)?,
            TransferDirection::DeviceToHost => {
                // SAFETY: the buffer holds `bytes` bytes.
                unsafe { std::ptr::write_bytes(self.host.as_mut_ptr() as *mut u8, 0xff, bytes) }
            }
        }
        d.synchronize()?;
        self.run_once()?;
        d.synchronize()?;
        let words = bytes / 4;
        let mut picks: Vec<usize> = (0..words.min(64)).collect();
        picks.extend(words.saturating_sub(64)..words);
        picks.extend(Rng::new(0x4057).distinct(words, 64.min(words)));
        picks.sort_unstable();
        picks.dedup();
        // SAFETY: the buffer holds `bytes` bytes and no copy is in flight.
        let host =
            unsafe { std::slice::from_raw_parts(self.host.as_mut_ptr() as *const u8, bytes) };
        let (mut on_gpu, mut on_host) = (Vec::new(), Vec::new());
        for &w in &picks {
            let raw = d.download(self.gpu.ptr, w * 4, 4)?;
            on_gpu.push(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as f64);
            let h = &host[w * 4..w * 4 + 4];
            on_host.push(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as f64);
        }
        let (actual, expected) = match self.direction {
            TransferDirection::HostToDevice => (on_gpu, on_host),
            TransferDirection::DeviceToHost => (on_host, on_gpu),
        };
        Ok(compare_outputs(
            &actual,
            &expected,
            0.0,
            &format!(
                "{} sampled 4-byte words of the destination equal the source",
                picks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([(
            "method".into(),
            format!(
                "{} on the GPU's stream, {} host memory{}",
                match self.direction {
                    TransferDirection::HostToDevice => "cuMemcpyHtoDAsync",
                    TransferDirection::DeviceToHost => "cuMemcpyDtoHAsync",
                },
                self.memory.name(),
                match self.memory {
                    HostMemory::Pinned => " (cuMemHostAlloc)",
                    HostMemory::Pageable => " (staged by the driver)",
                }
            ),
        )]);
        if self.group > 1 {
            d.insert(
                "timing".into(),
                format!(
                    "each sample is {} back-to-back copies timed by one CUDA event pair, divided by {}",
                    self.group, self.group
                ),
            );
        }
        d
    }

    fn topology(&self) -> Option<Topology> {
        Some(self.peers.topology(&[self.device], true))
    }
}
