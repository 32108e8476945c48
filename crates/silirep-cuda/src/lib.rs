//! The CUDA backend: cuBLASLt GEMMs and NVRTC-compiled kernels (`src/kernels/*.cu`) on an
//! NVIDIA GPU, with every library — libcuda, cuBLASLt, NVRTC — loaded at run time. The same
//! binary therefore runs on machines without CUDA, where [`CudaBackend::open`] returns an
//! error naming what is missing instead of failing to start.
//!
//! Flow: [`device`] opens the GPU and compiles [`sources`]; each kernel family has its module
//! ([`gemm`], [`bandwidth`], [`attention`], [`layer`], [`decode`], [`layer_backward`],
//! [`sweep`]); [`suite`] lists what is measured. Timing uses CUDA events; warm-up, repetitions and the stopping
//! rule are the shared harness's.
//!
//! Interconnect kernels ([`p2p`], [`host_transfer`], [`collectives`] over [`nccl`]) run on
//! the GPUs selected with `--gpus` (default: every visible GPU), opened by [`peers`] only
//! when the first such kernel is prepared; [`links`] records how the driver says they are
//! connected. Single-GPU kernels run on the first selected GPU.

pub mod attention;
pub mod bandwidth;
pub mod collectives;
pub mod decode;
pub mod device;
pub mod gemm;
pub mod host;
pub mod host_transfer;
pub mod layer;
pub mod layer_backward;
pub mod links;
pub mod nccl;
pub mod nvml;
pub mod p2p;
pub mod peers;
pub mod sources;
pub mod suite;
pub mod sweep;
pub mod telemetry;

pub use device::OpenError;

use device::Gpu;
use silirep_core::schema::{Accelerator, BackendInfo};
use silirep_core::{Backend, KernelError, KernelSpec, LayerPart, Pass, PreparedKernel, Suite};
use std::collections::BTreeMap;

pub struct CudaBackend {
    gpu: Gpu,
    /// The GPUs interconnect kernels use (CUDA ordinals); `gpu` is the first of them.
    gpus: Vec<u32>,
    /// Opened at the first interconnect kernel.
    interconnect: Option<Interconnect>,
}

/// Everything multi-device kernels share across configurations: the GPUs, NCCL (found once;
/// a miss is remembered and recorded for every collective) and the communicators of the
/// last GPU set, whose creation costs far more than one collective.
struct Interconnect {
    peers: peers::Peers,
    nccl: Option<Result<nccl::Nccl, String>>,
    comms: Option<collectives::Communicators>,
}

impl Drop for Interconnect {
    fn drop(&mut self) {
        if let (Some(comms), Some(Ok(nccl))) = (&self.comms, &self.nccl) {
            comms.destroy(nccl);
        }
    }
}

impl CudaBackend {
    /// Opens device 0: loads the libraries, creates the context, compiles every kernel.
    pub fn open() -> Result<CudaBackend, OpenError> {
        CudaBackend::open_gpus(&[])
    }

    /// Opens the first of `gpus` (every visible GPU when empty) for single-GPU kernels;
    /// the others are opened when an interconnect kernel first needs them.
    pub fn open_gpus(gpus: &[u32]) -> Result<CudaBackend, OpenError> {
        device::probe_libraries()?;
        let count = device::no_panic(
            "counting devices",
            cudarc::driver::CudaContext::device_count,
        )?
        .map_err(|e| OpenError::NoDevice(format!("{e:?}")))? as u32;
        let gpus: Vec<u32> = if gpus.is_empty() {
            (0..count).collect()
        } else {
            gpus.to_vec()
        };
        if let Some(missing) = gpus.iter().find(|g| **g >= count) {
            return Err(OpenError::NoDevice(format!(
                "--gpus names GPU {missing}, but {count} CUDA device(s) are visible (0 to {})",
                count.saturating_sub(1)
            )));
        }
        let first = *gpus
            .first()
            .ok_or_else(|| OpenError::NoDevice("no GPU selected".into()))?;
        Ok(CudaBackend {
            gpu: Gpu::open(first as usize)?,
            gpus,
            interconnect: None,
        })
    }

    fn prepare_interconnect<'a>(
        &'a mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
        if self.interconnect.is_none() {
            let peers = peers::Peers::open(&self.gpus)
                .map_err(|e| KernelError::Backend(format!("opening the GPUs: {e}")))?;
            self.interconnect = Some(Interconnect {
                peers,
                nccl: None,
                comms: None,
            });
        }
        let ic = self.interconnect.as_mut().expect("opened above");
        if let KernelSpec::Collective { devices, .. } = spec {
            let nccl = ic.nccl.get_or_insert_with(nccl::Nccl::open);
            let nccl = nccl.as_ref().map_err(|e| nccl::unavailable(e))?;
            for d in devices {
                ic.peers.device(*d)?;
            }
            if ic.comms.as_ref().map(|c| &c.devices) != Some(devices) {
                if let Some(old) = ic.comms.take() {
                    old.destroy(nccl);
                }
                let comms = nccl.init_all(devices).map_err(KernelError::Backend)?;
                ic.comms = Some(collectives::Communicators {
                    devices: devices.clone(),
                    comms,
                });
            }
        }
        let ic: &'a Interconnect = self.interconnect.as_ref().expect("opened above");
        let peers = &ic.peers;
        Ok(match spec {
            KernelSpec::PeerCopy {
                src_device,
                dst_device,
                bytes,
            } => Box::new(p2p::PeerCopy::prepare(
                peers,
                *src_device,
                *dst_device,
                *bytes,
                seed,
            )?),
            KernelSpec::HostTransfer {
                direction,
                memory,
                device,
                bytes,
            } => Box::new(host_transfer::HostTransfer::prepare(
                peers, *direction, *memory, *device, *bytes, seed,
            )?),
            KernelSpec::Collective {
                op, bytes, dtype, ..
            } => {
                let nccl = match &ic.nccl {
                    Some(Ok(nccl)) => nccl,
                    _ => return Err(KernelError::Backend("NCCL was not opened".into())),
                };
                let comms = ic.comms.as_ref().expect("created above");
                Box::new(collectives::Collective::prepare(
                    peers, nccl, comms, *op, *bytes, *dtype,
                )?)
            }
            other => {
                return Err(KernelError::Backend(format!(
                    "{} is not an interconnect kernel",
                    other.name()
                )));
            }
        })
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn info(&self) -> BackendInfo {
        let i = &self.gpu.info;
        BackendInfo {
            name: "cuda".into(),
            libraries: BTreeMap::from([
                ("cublasLt".into(), i.cublaslt_version.clone()),
                ("nvrtc".into(), i.nvrtc_version.clone()),
                ("cuda_driver_api".into(), i.driver_api_version.clone()),
                ("cudarc (crate)".into(), "0.19".into()),
            ]),
        }
    }

    fn accelerator(&self) -> Option<Accelerator> {
        let i = &self.gpu.info;
        let mut details = BTreeMap::from([
            (
                "compute_capability".into(),
                format!("{}.{}", i.compute_capability.0, i.compute_capability.1),
            ),
            ("l2_bytes".into(), i.l2_bytes.to_string()),
            ("cublaslt_version".into(), i.cublaslt_version.clone()),
            ("nvrtc_version".into(), i.nvrtc_version.clone()),
            (
                "interconnect_gpus".into(),
                silirep_core::kernels::devices_label(&self.gpus),
            ),
        ]);
        for (key, value) in [
            ("sm_clock_max_mhz", i.sm_clock_mhz),
            ("memory_clock_max_mhz", i.memory_clock_mhz),
            ("memory_bus_width_bits", i.memory_bus_bits),
        ] {
            if let Some(v) = value {
                details.insert(key.into(), v.to_string());
            }
        }
        if let Some(watts) = self.gpu.telemetry.as_ref().and_then(|t| t.power_limit_w()) {
            details.insert("power_limit_w".into(), format!("{watts:.0}"));
        }
        Some(Accelerator {
            name: i.name.clone(),
            vendor: "NVIDIA".into(),
            compute_units: Some(i.sm_count),
            memory_bytes: Some(i.memory_bytes),
            unified_memory: Some(false),
            driver_version: Some(
                i.driver_release
                    .clone()
                    .unwrap_or_else(|| i.driver_api_version.clone()),
            ),
            runtime_version: Some(format!(
                "CUDA driver API {}, NVRTC {}",
                i.driver_api_version, i.nvrtc_version
            )),
            details,
        })
    }

    fn last_level_cache_bytes(&self) -> Option<u64> {
        Some(self.gpu.info.l2_bytes)
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(self.gpu.info.memory_bytes)
    }

    fn suite(&self, suite: Suite) -> Vec<KernelSpec> {
        let mut specs = suite::specs(suite);
        specs.extend(suite::interconnect_specs(suite, &self.gpus));
        specs
    }

    fn prepare<'a>(
        &'a mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
        if matches!(
            spec,
            KernelSpec::NetworkTransfer { .. } | KernelSpec::NetworkRoundTrip { .. }
        ) {
            return Err(KernelError::network_needs_peer());
        }
        if spec.family() == silirep_core::KernelFamily::Interconnect {
            return self.prepare_interconnect(spec, seed);
        }
        let gpu = &self.gpu;
        gpu.recording.set(false);
        let kernel: Box<dyn PreparedKernel + 'a> = match spec {
            KernelSpec::Gemm { m, n, k, dtype } => {
                Box::new(gemm::Gemm::prepare(gpu, *m, *n, *k, *dtype, seed)?)
            }
            KernelSpec::Bandwidth {
                op,
                array_bytes,
                dtype,
            } => {
                if *dtype != silirep_core::Dtype::F64 {
                    return Err(KernelError::Unsupported(format!(
                        "CUDA bandwidth kernels stream f64 (bytes are what is measured); got {dtype}"
                    )));
                }
                Box::new(bandwidth::Bandwidth::prepare(gpu, *op, *array_bytes, seed)?)
            }
            KernelSpec::Attention {
                implementation,
                batch,
                heads,
                seq_len,
                head_dim,
                dtype,
                causal,
            } => Box::new(attention::Attention::prepare(
                gpu,
                *implementation,
                attention::Problem {
                    batch_heads: batch * heads,
                    seq: *seq_len,
                    dim: *head_dim,
                    causal: *causal,
                },
                *dtype,
                seed,
            )?),
            KernelSpec::Layer {
                pass,
                part,
                batch,
                seq_len,
                shape,
                dtype,
            } => {
                if *part != LayerPart::Full {
                    return Err(KernelError::Unsupported(
                        "the CUDA backend runs whole layers only".into(),
                    ));
                }
                match pass {
                    Pass::Forward => Box::new(layer::LayerForward::prepare(
                        gpu, *shape, *batch, *seq_len, *dtype, seed,
                    )?),
                    Pass::Backward => Box::new(layer_backward::LayerBackward::prepare(
                        gpu, *shape, *batch, *seq_len, *dtype, seed,
                    )?),
                }
            }
            KernelSpec::Decode {
                batch,
                layers,
                shape,
                context,
                dtype,
            } => Box::new(decode::Decode::prepare(
                gpu,
                *shape,
                *batch,
                *layers,
                *context,
                *dtype,
                spec.bytes(),
                seed,
            )?),
            KernelSpec::IntensitySweep {
                elements,
                fmas_per_element,
                dtype,
            } => {
                if *dtype != silirep_core::Dtype::F32 {
                    return Err(KernelError::Unsupported(format!(
                        "the intensity sweep runs in f32; got {dtype}"
                    )));
                }
                Box::new(sweep::Sweep::prepare(
                    gpu,
                    *elements,
                    *fmas_per_element,
                    seed,
                )?)
            }
            KernelSpec::Model { .. } => {
                return Err(KernelError::Unsupported(
                    "whole-model runs are imported, not measured".into(),
                ));
            }
            KernelSpec::PeerCopy { .. }
            | KernelSpec::HostTransfer { .. }
            | KernelSpec::Collective { .. }
            | KernelSpec::NetworkTransfer { .. }
            | KernelSpec::NetworkRoundTrip { .. } => {
                return Err(KernelError::Backend(
                    "interconnect kernels are prepared above".into(),
                ));
            }
        };
        Ok(Box::new(Monitored {
            kernel,
            gpu,
            timed: false,
        }))
    }
}

/// A kernel whose details also say what the GPU's clock, power and temperature were while
/// its samples were timed (see [`telemetry`]).
struct Monitored<'a> {
    kernel: Box<dyn PreparedKernel + 'a>,
    gpu: &'a Gpu,
    /// Whether timing has begun (readings exist only from then on).
    timed: bool,
}

impl PreparedKernel for Monitored<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        self.kernel.time(iterations)
    }

    fn begin_timing(&mut self) {
        self.gpu.readings.borrow_mut().clear();
        self.gpu.recording.set(true);
        self.timed = true;
        self.kernel.begin_timing();
    }

    fn verify(&mut self) -> Result<silirep_core::schema::Verification, KernelError> {
        self.kernel.verify()
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut details = self.kernel.details();
        if self.timed {
            details.extend(telemetry::summarize(&self.gpu.readings.borrow()));
        }
        details
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI has no GPU and no CUDA: opening must fail with a message naming what is missing,
    /// never panic. (On a machine with CUDA this test checks that opening works instead.)
    #[test]
    fn opening_without_cuda_is_a_clear_error() {
        // SAFETY: only probes whether the library can be opened.
        let has_driver = unsafe { cudarc::driver::sys::is_culib_present() };
        match CudaBackend::open() {
            Ok(backend) => assert!(has_driver && backend.accelerator().is_some()),
            Err(e) => {
                let message = e.to_string();
                if !has_driver {
                    assert!(matches!(e, OpenError::LibraryMissing { .. }), "{e:?}");
                    assert!(message.contains("libcuda"), "{message}");
                    assert!(message.contains("LD_LIBRARY_PATH"), "{message}");
                }
            }
        }
    }
}
