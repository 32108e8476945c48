//! The CPU backend: works on any machine with nothing installed, so `silirep measure` always
//! has something to run. Kernels are multi-threaded (rayon), GEMMs use the pure-Rust `gemm`
//! crate, and every kernel verifies its output against an f64 reference.

mod attention;
mod bandwidth;
mod common;
mod gemm;
mod layer;
mod layer_backward;
mod softmax;
mod suite;
mod sweep;

use silirep_core::schema::{Accelerator, BackendInfo};
use silirep_core::{
    Backend, Dtype, KernelError, KernelSpec, LayerPart, Pass, PreparedKernel, Suite,
};
use std::collections::BTreeMap;

pub struct CpuBackend {
    threads: usize,
    llc_bytes: u64,
    memory_bytes: Option<u64>,
}

/// Assumed when the OS does not say: larger than any desktop L3 we know of, so buffers sized
/// from it are still ≥ 4× the real cache.
const FALLBACK_LLC_BYTES: u64 = 64 << 20;

impl CpuBackend {
    /// `threads`: worker threads (default: every CPU the OS lets us use).
    pub fn new(threads: Option<usize>) -> CpuBackend {
        let threads = threads
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1)
            .max(1);
        CpuBackend {
            threads,
            llc_bytes: cache_sizes()
                .into_iter()
                .filter(|(name, _)| !name.ends_with('i'))
                .max_by_key(|(name, _)| name.clone())
                .map(|(_, bytes)| bytes)
                .unwrap_or(FALLBACK_LLC_BYTES),
            memory_bytes: memory_bytes(),
        }
    }

    /// Bandwidth arrays: at least 4× the last-level cache, rounded to MiB.
    fn bandwidth_bytes(&self, multiple: u64) -> u64 {
        (self.llc_bytes * multiple).max(64 << 20).div_ceil(1 << 20) << 20
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "cpu".into(),
            libraries: BTreeMap::from([
                ("gemm (crate)".into(), "0.19".into()),
                ("rayon".into(), "1".into()),
                ("threads".into(), self.threads.to_string()),
            ]),
        }
    }

    fn accelerator(&self) -> Option<Accelerator> {
        None
    }

    fn last_level_cache_bytes(&self) -> Option<u64> {
        Some(self.llc_bytes)
    }

    fn memory_bytes(&self) -> Option<u64> {
        self.memory_bytes
    }

    fn suite(&self, suite: Suite) -> Vec<KernelSpec> {
        suite::configurations(suite, |multiple| self.bandwidth_bytes(multiple))
    }

    fn prepare<'a>(
        &'a mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
        let t = self.threads;
        let f32_only = |dtype: &Dtype, what: &str| {
            if *dtype == Dtype::F32 {
                Ok(())
            } else {
                Err(KernelError::Unsupported(format!(
                    "{what} in {dtype} on the CPU (f32 only)"
                )))
            }
        };
        Ok(match spec {
            KernelSpec::Gemm { m, n, k, dtype } => {
                Box::new(gemm::Gemm::prepare(*m, *n, *k, *dtype, t, seed)?)
            }
            KernelSpec::Bandwidth {
                op,
                array_bytes,
                dtype,
            } => {
                if *dtype != Dtype::F64 {
                    return Err(KernelError::Unsupported(format!(
                        "CPU bandwidth kernels stream f64 (bytes are what is measured); got {dtype}"
                    )));
                }
                Box::new(bandwidth::Bandwidth::prepare(*op, *array_bytes, t, seed)?)
            }
            KernelSpec::Attention {
                implementation,
                batch,
                heads,
                seq_len,
                head_dim,
                dtype,
                causal,
            } => {
                f32_only(dtype, "attention")?;
                if *causal {
                    return Err(KernelError::Unsupported(
                        "causal attention is not implemented on the CPU backend (the CUDA backend measures it)"
                            .into(),
                    ));
                }
                Box::new(attention::Attention::prepare(
                    *implementation,
                    batch * heads,
                    *seq_len,
                    *head_dim,
                    t,
                    seed,
                )?)
            }
            KernelSpec::Layer {
                pass,
                part,
                batch,
                seq_len,
                shape,
                dtype,
            } => {
                f32_only(dtype, "layer")?;
                if *part != LayerPart::Full {
                    return Err(KernelError::Unsupported(
                        "the CPU backend runs whole layers only".into(),
                    ));
                }
                if *pass == Pass::Backward {
                    let tokens = batch * seq_len;
                    layer::fits_in_memory(shape, 1, true, self.memory_bytes)?;
                    let (weights, input) = layer::Layer::weights_and_input(*shape, tokens, seed)?;
                    return Ok(Box::new(layer_backward::LayerBackward::prepare(
                        *shape,
                        tokens as usize,
                        weights,
                        input,
                        t,
                        seed,
                    )?));
                }
                Box::new(layer::Layer::prepare(
                    *shape,
                    batch * seq_len,
                    1,
                    true,
                    0,
                    t,
                    self.memory_bytes,
                    seed,
                )?)
            }
            KernelSpec::Decode {
                batch,
                layers,
                shape,
                context,
                dtype,
            } => {
                f32_only(dtype, "decode")?;
                Box::new(layer::Layer::prepare(
                    *shape,
                    *batch,
                    *layers,
                    false,
                    *context,
                    t,
                    self.memory_bytes,
                    seed,
                )?)
            }
            KernelSpec::IntensitySweep {
                elements,
                fmas_per_element,
                dtype,
            } => {
                f32_only(dtype, "the intensity sweep")?;
                Box::new(sweep::Sweep::prepare(
                    *elements,
                    *fmas_per_element,
                    t,
                    seed,
                )?)
            }
            KernelSpec::Model { .. } => {
                return Err(KernelError::Unsupported(
                    "whole-model runs are imported, not measured".into(),
                ));
            }
            KernelSpec::NetworkTransfer { .. } | KernelSpec::NetworkRoundTrip { .. } => {
                return Err(KernelError::network_needs_peer());
            }
            KernelSpec::PeerCopy { .. }
            | KernelSpec::HostTransfer { .. }
            | KernelSpec::Collective { .. } => {
                return Err(KernelError::Unsupported(
                    "interconnect kernels need an accelerator (--backend cuda or metal)".into(),
                ));
            }
        })
    }
}

/// CPU caches by name (`l1d`, `l1i`, `l2`, `l3`) in bytes: sysfs on Linux, sysctl on macOS.
pub fn cache_sizes() -> BTreeMap<String, u64> {
    let mut caches = BTreeMap::new();
    if cfg!(target_os = "macos") {
        for (name, key) in [
            ("l1d", "hw.perflevel0.l1dcachesize"),
            ("l2", "hw.perflevel0.l2cachesize"),
            ("l3", "hw.l3cachesize"),
        ] {
            if let Some(v) = sysctl(key).and_then(|v| v.parse().ok()).filter(|v| *v > 0) {
                caches.insert(name.to_string(), v);
            }
        }
        return caches;
    }
    let Ok(entries) = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache") else {
        return caches;
    };
    for entry in entries.flatten() {
        let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).ok();
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        let name = match kind.trim() {
            "Data" => format!("l{}d", level.trim()),
            "Instruction" => format!("l{}i", level.trim()),
            _ => format!("l{}", level.trim()),
        };
        if let Some(bytes) = parse_size(size.trim()) {
            caches.insert(name, bytes);
        }
    }
    caches
}

/// `32768K`, `1M`, `512` → bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().ok()?;
    let scale = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    Some(value * scale)
}

pub fn memory_bytes() -> Option<u64> {
    if cfg!(target_os = "macos") {
        return sysctl("hw.memsize").and_then(|v| v.parse().ok());
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn sysctl(name: &str) -> Option<String> {
    let out = std::process::Command::new("sysctl")
        .args(["-n", name])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_size_bandwidth_at_four_times_the_cache_and_grow() {
        let b = CpuBackend::new(Some(1));
        for suite in [Suite::Quick, Suite::Standard, Suite::Full] {
            let specs = b.suite(suite);
            for s in &specs {
                if let KernelSpec::Bandwidth { array_bytes, .. } = s {
                    assert!(*array_bytes >= 4 * b.llc_bytes, "{s:?}");
                }
            }
        }
        assert!(b.suite(Suite::Quick).len() < b.suite(Suite::Standard).len());
        assert!(b.suite(Suite::Standard).len() < b.suite(Suite::Full).len());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn unsupported_configurations_say_why() {
        let mut b = CpuBackend::new(Some(1));
        let spec = KernelSpec::Gemm {
            m: 64,
            n: 64,
            k: 64,
            dtype: Dtype::Bf16,
        };
        let err = b.prepare(&spec, 1).err().unwrap();
        assert!(err.to_string().contains("f32 and f16 only"), "{err}");
        // A `--sizes` count past what the sweep's counter holds is refused, not truncated.
        let sweep = KernelSpec::IntensitySweep {
            elements: 16,
            fmas_per_element: 5_000_000_000,
            dtype: Dtype::F32,
        };
        let err = b.prepare(&sweep, 1).err().unwrap();
        assert!(
            err.to_string().contains("5000000000 FMAs per element"),
            "{err}"
        );
    }
}
