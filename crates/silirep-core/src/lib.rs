//! silirep's shared vocabulary: what a kernel is and how much work it does ([`kernels`]),
//! the results file format ([`schema`]), the [`backend::Backend`] trait every backend
//! implements, and the [`harness`] that turns a backend into honest measurements.
//!
//! This crate depends on nothing but serde and thiserror so that every backend, including the
//! Metal one that is type-checked for macOS on Linux, can use it.

pub mod backend;
pub mod harness;
pub mod kernels;
pub mod median;
pub mod reference;
pub mod rng;
pub mod schema;

pub use backend::{Backend, KernelError, PreparedKernel, Suite};
pub use kernels::{
    AttentionImpl, BandwidthOp, CollectiveOp, DECODE_CONTEXT, Dtype, HostMemory, KernelFamily,
    KernelSpec, LayerPart, LayerShape, LinkDirection, ModelPhase, NetworkProtocol, Pass, RateUnit,
    SizeMeaning, TransferDirection, decode_kv_bytes, network_transfer_bytes,
};
pub use schema::{Measurement, RunFile};
