//! Host↔GPU copies on unified memory, under the CUDA backend's kernel names
//! (`host_to_device`, `device_to_host`): a blit between a CPU-visible shared buffer (what the
//! host writes) and a GPU-private buffer (what kernels read fastest). There is no PCIe link
//! to measure on Apple Silicon; this is the cost of moving data into and out of the GPU's
//! preferred layout over the same memory, the number a CUDA host transfer is compared with.
//!
//! "Pinned" host memory is a Metal shared buffer (wired by the driver); ordinary pageable
//! memory has no direct Metal copy path and is recorded as unsupported.

use super::gpu::{Buffer, Gpu, Storage};
use super::prepared::{Timed, Workload};
use super::program::Step;
use crate::numeric;
use objc2_metal::MTLDevice;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Link, Topology, TopologyDevice, Verification};
use silirep_core::{Dtype, HostMemory, KernelError, PreparedKernel, TransferDirection};
use std::collections::BTreeMap;

const CHECK_WINDOW_FLOATS: usize = 1024;

pub(crate) fn prepare<'a>(
    gpu: &'a mut Gpu,
    direction: TransferDirection,
    memory: HostMemory,
    device: u32,
    bytes: u64,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    if memory == HostMemory::Pageable {
        return Err(KernelError::Unsupported(
            "Metal copies only buffers it allocated (shared: wired, the analogue of pinned); \
             pageable host memory has no Metal copy path"
                .into(),
        ));
    }
    if device != 0 {
        return Err(KernelError::Unsupported(format!(
            "a Mac has one GPU (0); got {device}"
        )));
    }
    if bytes == 0 || !bytes.is_multiple_of(4) {
        return Err(KernelError::Unsupported(format!(
            "{bytes} bytes: host transfers are whole f32 words"
        )));
    }
    gpu.ensure_fits(2 * bytes, "the host transfer buffers")?;
    let floats = (bytes / 4) as usize;
    let (source_storage, destination_storage) = match direction {
        TransferDirection::HostToDevice => (Storage::Shared, Storage::Private),
        TransferDirection::DeviceToHost => (Storage::Private, Storage::Shared),
    };
    let source = gpu.random_buffer(floats, Dtype::F32, source_storage, seed, 1.0)?;
    let destination = gpu.buffer(bytes as usize, destination_storage)?;
    let program = vec![Step::Blit {
        from: source.clone(),
        to: destination.clone(),
        bytes: bytes as usize,
    }];
    let gpu: &Gpu = gpu;
    let workload = HostTransfer {
        programs: vec![program],
        source,
        destination,
        floats,
        direction,
        seed,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

struct HostTransfer {
    programs: Vec<Vec<Step>>,
    source: Buffer,
    destination: Buffer,
    floats: usize,
    direction: TransferDirection,
    seed: u64,
}

impl Workload for HostTransfer {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let (mut actual, mut expected) = (Vec::new(), Vec::new());
        let windows = self.floats.div_ceil(CHECK_WINDOW_FLOATS);
        for window in numeric::sample_indices(windows, 32, self.seed) {
            let first = window * CHECK_WINDOW_FLOATS;
            let count = CHECK_WINDOW_FLOATS.min(self.floats - first);
            let source = gpu.read(&self.source, Dtype::F32, first, count)?;
            let copied = gpu.read(&self.destination, Dtype::F32, first, count)?;
            actual.extend(copied);
            expected.extend(source);
        }
        // A copy is exact: tolerance 0.
        Ok(compare_outputs(
            &actual,
            &expected,
            0.0,
            "32 sampled windows of 1024 floats of the destination equal the source",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "method".into(),
            match self.direction {
                TransferDirection::HostToDevice => {
                    "blit from a shared (CPU-visible) buffer to a private one"
                }
                TransferDirection::DeviceToHost => {
                    "blit from a private buffer to a shared (CPU-visible) one"
                }
            }
            .into(),
        )])
    }

    fn topology(&self, gpu: &Gpu) -> Option<Topology> {
        Some(Topology {
            devices: vec![
                TopologyDevice {
                    id: "host".into(),
                    name: "host memory".into(),
                    pci_bus_id: None,
                },
                TopologyDevice {
                    id: "0".into(),
                    name: gpu.device.name().to_string(),
                    pci_bus_id: None,
                },
            ],
            links: vec![Link {
                from: "host".into(),
                to: "0".into(),
                kind: "unified_memory".into(),
                label: "unified memory".into(),
                attributes: BTreeMap::new(),
            }],
        })
    }
}
