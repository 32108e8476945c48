//! The backend registry: turns `--backend` into a [`Backend`]. A new backend is one more
//! arm here (and one in [`parse_backend_arg`]).

use crate::cli::BackendArg;
use anyhow::{Result, bail};
use silirep_core::Backend;

/// `--backend`'s parser: the four names, and for the names people reach for first (`gpu`,
/// `nvidia`, `mps`, ...) the backend they mean. clap turns the error into its usage message.
pub fn parse_backend_arg(text: &str) -> Result<BackendArg, String> {
    let lower = text.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "auto" => BackendArg::Auto,
        "cpu" => BackendArg::Cpu,
        "cuda" => BackendArg::Cuda,
        "metal" => BackendArg::Metal,
        "gpu" | "gpus" | "accelerator" | "device" => {
            return Err("did you mean cuda (NVIDIA) or metal (Apple)? \
                        (or auto: cuda, else metal, else cpu)"
                .into());
        }
        "nvidia" | "cublas" | "cublaslt" | "nvrtc" | "gpu-nvidia" => {
            return Err("did you mean cuda (NVIDIA GPUs)?".into());
        }
        "mps" | "apple" | "mlx" | "mac" | "macos" => {
            return Err("did you mean metal (Apple GPUs)?".into());
        }
        "rocm" | "hip" | "amd" | "vulkan" | "opencl" | "intel" | "oneapi" | "xpu" => {
            return Err(format!(
                "{text} is not supported; the backends are auto, cpu, cuda (NVIDIA) and metal \
                 (Apple)"
            ));
        }
        _ => {
            return Err("expected auto, cpu, cuda (NVIDIA) or metal (Apple)".to_string());
        }
    })
}

pub fn open(choice: BackendArg, threads: Option<usize>, gpus: &[u32]) -> Result<Box<dyn Backend>> {
    match choice {
        BackendArg::Cpu => Ok(Box::new(silirep_cpu::CpuBackend::new(threads))),
        BackendArg::Cuda => open_cuda(gpus).map_err(|e| anyhow::anyhow!("--backend cuda: {e}")),
        BackendArg::Metal => open_metal().map_err(|e| anyhow::anyhow!("--backend metal: {e}")),
        BackendArg::Auto => {
            // Prefer the accelerator; say why each one was passed over.
            match open_cuda(gpus) {
                Ok(b) => return Ok(b),
                Err(e) => eprintln!("auto: cuda not used ({e})"),
            }
            match open_metal() {
                Ok(b) => return Ok(b),
                Err(e) => eprintln!("auto: metal not used ({e})"),
            }
            Ok(Box::new(silirep_cpu::CpuBackend::new(threads)))
        }
    }
}

fn open_cuda(gpus: &[u32]) -> Result<Box<dyn Backend>> {
    // Loads libcuda, cuBLASLt and NVRTC at run time; without them this is an error naming
    // the missing library, so `auto` falls back with a one-line reason.
    match silirep_cuda::CudaBackend::open_gpus(gpus) {
        Ok(b) => Ok(Box::new(b)),
        Err(e) => bail!("{e}"),
    }
}

#[cfg(target_os = "macos")]
fn open_metal() -> Result<Box<dyn Backend>> {
    match silirep_metal::MetalBackend::open() {
        Ok(b) => Ok(Box::new(b)),
        Err(e) => bail!("{e}"),
    }
}

#[cfg(not(target_os = "macos"))]
fn open_metal() -> Result<Box<dyn Backend>> {
    bail!("Metal is only available on macOS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_backend_names_point_to_the_right_one() {
        assert_eq!(parse_backend_arg("CUDA"), Ok(BackendArg::Cuda));
        assert_eq!(parse_backend_arg("cpu"), Ok(BackendArg::Cpu));
        let gpu = parse_backend_arg("gpu").unwrap_err();
        assert!(
            gpu.contains("did you mean cuda (NVIDIA) or metal (Apple)?"),
            "{gpu}"
        );
        assert!(parse_backend_arg("mps").unwrap_err().contains("metal"));
        assert!(parse_backend_arg("nvidia").unwrap_err().contains("cuda"));
        assert!(
            parse_backend_arg("rocm")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            parse_backend_arg("x")
                .unwrap_err()
                .contains("expected auto, cpu")
        );
    }
}
