//! silirep's Apple Metal backend: GEMMs through Metal Performance Shaders, bandwidth,
//! attention, transformer-layer, decode and intensity-sweep kernels written in the Metal
//! Shading Language (`src/kernels/*.metal`, compiled at run time), all timed with the GPU's
//! own command-buffer timestamps and verified against f64 references before any number
//! counts.
//!
//! The files mirror the other backends (`suite.rs`, `gemm.rs`, `bandwidth.rs`,
//! `attention.rs`, `layer.rs`, `layer_backward.rs`, `sweep.rs`, `host_transfer.rs`), plus
//! what only Metal has (`gpu.rs`, `mps.rs`, `program.rs`, `prepared.rs`). Everything that
//! touches Metal is compiled on macOS only; on other systems this crate is empty apart from
//! the platform-independent pieces its tests exercise (kernel-source catalogue, suite sizing,
//! verification arithmetic, parsing of `ioreg` output).

#[cfg(any(target_os = "macos", test))]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod hardware;
#[cfg(any(target_os = "macos", test))]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod numeric;
#[cfg(any(target_os = "macos", test))]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod sources;
#[cfg(any(target_os = "macos", test))]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod suite;

#[cfg(target_os = "macos")]
mod attention;
#[cfg(target_os = "macos")]
mod backend;
#[cfg(target_os = "macos")]
mod bandwidth;
#[cfg(target_os = "macos")]
mod gemm;
#[cfg(target_os = "macos")]
mod gpu;
#[cfg(target_os = "macos")]
mod host_transfer;
#[cfg(target_os = "macos")]
mod layer;
#[cfg(target_os = "macos")]
mod layer_backward;
#[cfg(target_os = "macos")]
mod mps;
#[cfg(target_os = "macos")]
mod prepared;
#[cfg(target_os = "macos")]
mod program;
#[cfg(target_os = "macos")]
mod sweep;
#[cfg(all(test, target_os = "macos"))]
mod tests;

#[cfg(target_os = "macos")]
pub use backend::MetalBackend;
