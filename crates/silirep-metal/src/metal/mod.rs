//! Everything that talks to Metal (macOS only).

mod attention;
mod backend;
mod bandwidth;
mod gemm;
mod gpu;
mod layer;
mod prepared;
mod sweep;

pub use backend::MetalBackend;
