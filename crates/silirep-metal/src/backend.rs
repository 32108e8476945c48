//! `MetalBackend`: device discovery, device facts for the results file, and dispatch from a
//! `KernelSpec` to the workload that runs it.

use super::gpu::{Device, Gpu};
use super::{attention, bandwidth, gemm, host_transfer, layer, sweep};
use crate::hardware;
use crate::suite::{self, Profile};
use objc2::rc::{Retained, autoreleasepool};
use objc2::sel;
use objc2_foundation::NSObjectProtocol;
use objc2_metal::{MTLCopyAllDevices, MTLCreateSystemDefaultDevice, MTLDevice, MTLGPUFamily};
use silirep_core::schema::{Accelerator, BackendInfo};
use silirep_core::{Backend, KernelError, KernelSpec, PreparedKernel, Suite};
use std::collections::BTreeMap;
use std::process::Command;

/// The Apple GPU, driven through Metal, Metal Performance Shaders and kernels compiled from
/// this crate's `.metal` files at run time.
pub struct MetalBackend {
    gpu: Gpu,
    name: String,
    macos_version: Option<String>,
    gpu_cores: Option<u32>,
}

impl MetalBackend {
    /// Opens the system's default Metal device.
    pub fn open() -> Result<MetalBackend, KernelError> {
        // The default device is documented as the one driving the main display; fall back to
        // the device list for headless sessions where there may be no such device.
        let device = MTLCreateSystemDefaultDevice()
            .or_else(|| MTLCopyAllDevices().firstObject())
            .ok_or_else(|| {
                KernelError::Unsupported(
                    "no Metal device: MTLCreateSystemDefaultDevice and MTLCopyAllDevices \
                     found none (a virtual machine or a Mac without a Metal-capable GPU)"
                        .into(),
                )
            })?;
        let name = autoreleasepool(|_| device.name().to_string());
        Ok(MetalBackend {
            gpu: Gpu::new(device)?,
            name,
            macos_version: command_output("sw_vers", &["-productVersion"]),
            gpu_cores: gpu_core_count(),
        })
    }

    fn device(&self) -> &Retained<Device> {
        &self.gpu.device
    }

    fn profile(&self) -> Profile {
        Profile {
            last_level_cache_bytes: hardware::system_level_cache_bytes(&self.name),
        }
    }

    /// Device facts for the results file.
    fn describe_device(&self) -> Accelerator {
        let device = self.device();
        let mut details = BTreeMap::from([
            (
                "recommended_max_working_set_bytes".to_string(),
                device.recommendedMaxWorkingSetSize().to_string(),
            ),
            (
                "max_buffer_length_bytes".to_string(),
                device.maxBufferLength().to_string(),
            ),
            ("gpu_families".to_string(), self.families()),
            (
                "last_level_cache_bytes_source".to_string(),
                "upper bound per chip tier (Apple publishes no SLC size)".to_string(),
            ),
        ]);
        // `architecture` exists from macOS 14; asking an older Metal would raise an
        // Objective-C exception.
        if device.respondsToSelector(sel!(architecture)) {
            details.insert(
                "architecture".into(),
                device.architecture().name().to_string(),
            );
        }
        if let Some(version) = &self.macos_version {
            details.insert("macos_version".into(), version.clone());
        }
        Accelerator {
            name: self.name.clone(),
            vendor: "Apple".into(),
            compute_units: self.gpu_cores,
            memory_bytes: Some(device.recommendedMaxWorkingSetSize()),
            unified_memory: Some(device.hasUnifiedMemory()),
            driver_version: self.macos_version.as_ref().map(|v| format!("macOS {v}")),
            runtime_version: Some(self.families()),
            details,
        }
    }

    /// The newest GPU families the device reports, e.g. `apple9, metal3`.
    fn families(&self) -> String {
        let apple = [
            (MTLGPUFamily::Apple10, "apple10"),
            (MTLGPUFamily::Apple9, "apple9"),
            (MTLGPUFamily::Apple8, "apple8"),
            (MTLGPUFamily::Apple7, "apple7"),
            (MTLGPUFamily::Apple6, "apple6"),
        ]
        .into_iter()
        .find(|(family, _)| self.device().supportsFamily(*family))
        .map(|(_, name)| name);
        let metal = [
            (MTLGPUFamily::Metal4, "metal4"),
            (MTLGPUFamily::Metal3, "metal3"),
        ]
        .into_iter()
        .find(|(family, _)| self.device().supportsFamily(*family))
        .map(|(_, name)| name);
        let found: Vec<&str> = apple.into_iter().chain(metal).collect();
        if found.is_empty() {
            "unknown".into()
        } else {
            found.join(", ")
        }
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// GPU cores from the IORegistry (`ioreg`), falling back to `system_profiler`, which is slow
/// (about a second) but present on every macOS.
fn gpu_core_count() -> Option<u32> {
    command_output("ioreg", &["-rc", "AGXAccelerator", "-d1"])
        .and_then(|text| hardware::parse_gpu_core_count(&text))
        .or_else(|| {
            command_output("system_profiler", &["SPDisplaysDataType"])
                .and_then(|text| hardware::parse_system_profiler_cores(&text))
        })
}

impl Backend for MetalBackend {
    fn name(&self) -> &'static str {
        "metal"
    }

    fn info(&self) -> BackendInfo {
        let os = self
            .macos_version
            .clone()
            .unwrap_or_else(|| "unknown".into());
        BackendInfo {
            name: "metal".into(),
            // Metal and MPS ship with the OS, so the macOS version is their version.
            libraries: BTreeMap::from([
                ("Metal".to_string(), format!("macOS {os}")),
                ("MetalPerformanceShaders".to_string(), format!("macOS {os}")),
            ]),
        }
    }

    fn accelerator(&self) -> Option<Accelerator> {
        autoreleasepool(|_| Some(self.describe_device()))
    }

    fn last_level_cache_bytes(&self) -> Option<u64> {
        Some(self.profile().last_level_cache_bytes)
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(self.device().recommendedMaxWorkingSetSize())
    }

    fn suite(&self, suite: Suite) -> Vec<KernelSpec> {
        suite::configurations(self.profile(), suite)
    }

    fn prepare<'a>(
        &'a mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
        let cache_bytes = self.profile().last_level_cache_bytes;
        let gpu = &mut self.gpu;
        // Descriptors and other autoreleased objects made while preparing are released here
        // rather than accumulating in the thread's implicit pool for the whole run.
        autoreleasepool(|_| prepare_spec(gpu, spec, cache_bytes, seed))
    }
}

fn prepare_spec<'a>(
    gpu: &'a mut Gpu,
    spec: &KernelSpec,
    cache_bytes: u64,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    match *spec {
        KernelSpec::Gemm { m, n, k, dtype } => gemm::prepare(gpu, m, n, k, dtype, seed),
        KernelSpec::Bandwidth {
            op,
            array_bytes,
            dtype,
        } => bandwidth::prepare(gpu, op, array_bytes, dtype, cache_bytes, seed),
        KernelSpec::Attention {
            implementation,
            batch,
            heads,
            seq_len,
            head_dim,
            dtype,
            causal,
        } => {
            if causal {
                return Err(KernelError::Unsupported(
                    "causal attention is not implemented on the Metal backend (the CUDA backend measures it)"
                        .into(),
                ));
            }
            attention::prepare(
                gpu,
                implementation,
                attention::Shape {
                    batch,
                    heads,
                    seq_len,
                    head_dim,
                },
                dtype,
                seed,
            )
        }
        KernelSpec::Layer {
            pass,
            part,
            batch,
            seq_len,
            shape,
            dtype,
        } => layer::prepare_layer(gpu, pass, part, batch, seq_len, shape, dtype, seed),
        KernelSpec::Decode {
            batch,
            layers,
            shape,
            context,
            dtype,
        } => {
            if context > 0 {
                return Err(KernelError::Unsupported(format!(
                    "the Metal decode has no attention over a KV cache; context {context} needs it (context 0 decodes without)"
                )));
            }
            layer::prepare_decode(gpu, batch, layers, shape, dtype, seed)
        }
        KernelSpec::IntensitySweep {
            elements,
            fmas_per_element,
            dtype,
        } => sweep::prepare(gpu, elements, fmas_per_element, dtype, seed),
        KernelSpec::Model { .. } => Err(KernelError::Unsupported(
            "whole-model runs are imported from other tools, not measured by a backend".into(),
        )),
        KernelSpec::HostTransfer {
            direction,
            memory,
            device,
            bytes,
        } => host_transfer::prepare(gpu, direction, memory, device, bytes, seed),
        KernelSpec::NetworkTransfer { .. } | KernelSpec::NetworkRoundTrip { .. } => {
            Err(KernelError::network_needs_peer())
        }
        KernelSpec::PeerCopy { .. } | KernelSpec::Collective { .. } => {
            Err(KernelError::Unsupported(
                "a Mac has one GPU: peer copies and collectives need several".into(),
            ))
        }
    }
}
