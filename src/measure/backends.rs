//! The backend registry: turns `--backend` into a [`Backend`]. A new backend is one more
//! arm here.

use crate::cli::BackendArg;
use anyhow::{Result, bail};
use silirep_core::Backend;

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
