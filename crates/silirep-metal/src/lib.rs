//! silirep's Apple Metal backend: GEMMs through Metal Performance Shaders, bandwidth,
//! attention, transformer-layer, decode and intensity-sweep kernels written in the Metal
//! Shading Language (`src/kernels/*.metal`, compiled at run time), all timed with the GPU's
//! own command-buffer timestamps and verified against f64 references before any number
//! counts.
//!
//! Everything that touches Metal is compiled on macOS only; on other systems this crate is
//! empty apart from the platform-independent pieces its tests exercise (kernel-source
//! catalogue, suite sizing, verification arithmetic, parsing of `ioreg` output).

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
mod metal;

#[cfg(target_os = "macos")]
pub use metal::MetalBackend;
