//! Everything that talks to Metal (macOS only).

mod attention;
mod backend;
mod bandwidth;
mod gemm;
mod gpu;
mod host_transfer;
mod layer;
mod layer_backward;
mod mps;
mod prepared;
mod program;
mod sweep;

pub use backend::MetalBackend;

#[cfg(test)]
mod tests;
