//! What each benchmark kernel is, and how much work it does.
//!
//! Every backend, every importer and the report count FLOPs and bytes through the functions
//! here, so a GEMM measured by the CUDA backend and a GEMM imported from another tool are
//! rated by the same formula. The formulas are documented, with their reasoning, in
//! `docs/results-schema.md`; a change here must change that document too.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a kernel's operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    F64,
    F32,
    /// f32 storage, tensor-core math with a 10-bit mantissa (NVIDIA TF32).
    Tf32,
    F16,
    Bf16,
    Fp8E4m3,
    Int8,
    /// 4-bit weight quantisation (llama.cpp Q4_K, MLX 4-bit); about half a byte per weight.
    Q4,
}

impl Dtype {
    pub const ALL: [Dtype; 8] = [
        Dtype::F64,
        Dtype::F32,
        Dtype::Tf32,
        Dtype::F16,
        Dtype::Bf16,
        Dtype::Fp8E4m3,
        Dtype::Int8,
        Dtype::Q4,
    ];

    /// Bytes one element occupies in memory.
    pub fn size_bytes(self) -> f64 {
        match self {
            Dtype::F64 => 8.0,
            Dtype::F32 | Dtype::Tf32 => 4.0,
            Dtype::F16 | Dtype::Bf16 => 2.0,
            Dtype::Fp8E4m3 | Dtype::Int8 => 1.0,
            Dtype::Q4 => 0.5,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "f64",
            Dtype::F32 => "f32",
            Dtype::Tf32 => "tf32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::Fp8E4m3 => "fp8_e4m3",
            Dtype::Int8 => "int8",
            Dtype::Q4 => "q4",
        }
    }

    /// Accepts our own names and the spellings other tools write (`float16`, `half`, ...).
    pub fn parse(text: &str) -> Option<Dtype> {
        let lower = text.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "f64" | "float64" | "double" | "fp64" => Dtype::F64,
            "f32" | "float32" | "float" | "fp32" => Dtype::F32,
            "tf32" => Dtype::Tf32,
            "f16" | "float16" | "half" | "fp16" => Dtype::F16,
            "bf16" | "bfloat16" => Dtype::Bf16,
            "fp8" | "fp8_e4m3" | "e4m3" | "float8_e4m3fn" => Dtype::Fp8E4m3,
            "int8" | "i8" => Dtype::Int8,
            "q4" | "4bit" | "4-bit" | "int4" => Dtype::Q4,
            _ => return None,
        })
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The four STREAM-style bandwidth kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandwidthOp {
    /// `sum += a[i]`: one array read.
    Read,
    /// `a[i] = x`: one array written.
    Write,
    /// `b[i] = a[i]`: one read, one write.
    Copy,
    /// `a[i] = b[i] + q * c[i]`: two reads, one write.
    Triad,
}

impl BandwidthOp {
    pub const ALL: [BandwidthOp; 4] = [
        BandwidthOp::Read,
        BandwidthOp::Write,
        BandwidthOp::Copy,
        BandwidthOp::Triad,
    ];

    /// Arrays touched per element, by McCalpin's STREAM counting rule (no write-allocate
    /// traffic counted).
    pub fn arrays_touched(self) -> u64 {
        match self {
            BandwidthOp::Read | BandwidthOp::Write => 1,
            BandwidthOp::Copy => 2,
            BandwidthOp::Triad => 3,
        }
    }

    /// Floating-point operations per element (read's reduction adds, triad's multiply-add).
    pub fn flops_per_element(self) -> u64 {
        match self {
            BandwidthOp::Read => 1,
            BandwidthOp::Write | BandwidthOp::Copy => 0,
            BandwidthOp::Triad => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BandwidthOp::Read => "read",
            BandwidthOp::Write => "write",
            BandwidthOp::Copy => "copy",
            BandwidthOp::Triad => "triad",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionImpl {
    /// Scores `Q·Kᵀ` materialised in memory, softmax, then `P·V`.
    Naive,
    /// One kernel that never writes the score matrix (flash-attention style).
    Fused,
    /// Imported from a tool that did not say which; compared only with the same label.
    Unspecified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    Forward,
    Backward,
}

/// Which part of a transformer layer was timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerPart {
    /// Attention block plus feed-forward block: the whole layer.
    Full,
    /// Q/K/V/O projections and the attention itself.
    Attention,
    /// Gate, up and down projections (SwiGLU feed-forward).
    Ffn,
}

/// Shape of one decoder layer. Mistral-7B: hidden 4096, 32 heads, 8 KV heads, head_dim 128,
/// intermediate 14336, 32 layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LayerShape {
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub intermediate: u64,
}

impl LayerShape {
    pub const MISTRAL_7B: LayerShape = LayerShape {
        hidden: 4096,
        heads: 32,
        kv_heads: 8,
        head_dim: 128,
        intermediate: 14336,
    };
    pub const MISTRAL_7B_LAYERS: u64 = 32;
    /// RMSNorm's ε, as Mistral-7B's `config.json` sets it (`rms_norm_eps`). Part of what the
    /// layer kernels compute, so every backend uses this one value.
    pub const RMS_NORM_EPSILON: f32 = 1e-5;

    /// Decoder layers of the whole model this shape is taken from, when known.
    pub fn model_layers(&self) -> Option<u64> {
        (*self == Self::MISTRAL_7B).then_some(Self::MISTRAL_7B_LAYERS)
    }

    /// Weights of the attention block: Q and O are hidden×(heads·head_dim), K and V are
    /// hidden×(kv_heads·head_dim).
    pub fn attention_weights(&self) -> u64 {
        2 * self.hidden * self.heads * self.head_dim
            + 2 * self.hidden * self.kv_heads * self.head_dim
    }

    /// Weights of the SwiGLU feed-forward block: gate, up and down.
    pub fn ffn_weights(&self) -> u64 {
        3 * self.hidden * self.intermediate
    }

    pub fn weights(&self, part: LayerPart) -> u64 {
        match part {
            LayerPart::Full => self.attention_weights() + self.ffn_weights(),
            LayerPart::Attention => self.attention_weights(),
            LayerPart::Ffn => self.ffn_weights(),
        }
    }
}

/// Model-level runs imported from other tools (whole-model tokens/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPhase {
    /// Whole prompt in one forward pass.
    Prefill,
    /// One token per forward pass (autoregressive generation).
    Decode,
    /// Forward + backward + optimizer step (fine-tuning).
    Train,
    /// Moving a prefill's KV cache to the machine that decodes (disaggregated inference):
    /// serialise, send, receive, as the source timed it. `tokens` are the prompt's tokens.
    KvTransfer,
    /// One whole request, prompt in to last token out, every stage included. `tokens` are
    /// the tokens generated.
    EndToEnd,
}

impl ModelPhase {
    pub fn name(self) -> &'static str {
        match self {
            ModelPhase::Prefill => "prefill",
            ModelPhase::Decode => "decode",
            ModelPhase::Train => "train",
            ModelPhase::KvTransfer => "kv_transfer",
            ModelPhase::EndToEnd => "end_to_end",
        }
    }
}

/// The transport of a network transfer between two hosts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NetworkProtocol {
    #[default]
    Tcp,
    Udp,
}

impl NetworkProtocol {
    /// TCP: what `silirep link` measures, and what a transfer that names no protocol used.
    pub fn is_tcp(&self) -> bool {
        *self == NetworkProtocol::Tcp
    }

    pub fn name(self) -> &'static str {
        match self {
            NetworkProtocol::Tcp => "tcp",
            NetworkProtocol::Udp => "udp",
        }
    }
}

/// Which way bytes cross a network link, seen from the machine that measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// This machine sends, the peer receives.
    ToPeer,
    /// The peer sends, this machine receives.
    FromPeer,
}

impl LinkDirection {
    pub fn name(self) -> &'static str {
        match self {
            LinkDirection::ToPeer => "to_peer",
            LinkDirection::FromPeer => "from_peer",
        }
    }
}

/// Which way a host transfer moves its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    HostToDevice,
    DeviceToHost,
}

/// The host memory a transfer reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostMemory {
    /// Page-locked (pinned): the copy engine reads it directly.
    Pinned,
    /// Ordinary allocation: the driver stages it through a pinned bounce buffer.
    Pageable,
}

impl HostMemory {
    pub fn name(self) -> &'static str {
        match self {
            HostMemory::Pinned => "pinned",
            HostMemory::Pageable => "pageable",
        }
    }
}

/// Collective operations over several GPUs, with nccl-tests' names and byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveOp {
    /// Every rank ends with the element-wise sum of every rank's buffer.
    AllReduce,
    /// Every rank ends with the concatenation of every rank's buffer.
    AllGather,
    /// Every rank ends with its slice of the element-wise sum.
    ReduceScatter,
    /// Rank r's p-th slice goes to rank p's r-th slice (grouped send/recv, as nccl-tests).
    AllToAll,
    /// Rank 0's buffer is copied to every rank.
    Broadcast,
    /// Rank r sends its buffer to rank r+1 (mod n) and receives from rank r−1, as nccl-tests'
    /// `sendrecv_perf`.
    SendRecv,
}

impl CollectiveOp {
    pub const ALL: [CollectiveOp; 6] = [
        CollectiveOp::AllReduce,
        CollectiveOp::AllGather,
        CollectiveOp::ReduceScatter,
        CollectiveOp::AllToAll,
        CollectiveOp::Broadcast,
        CollectiveOp::SendRecv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CollectiveOp::AllReduce => "all_reduce",
            CollectiveOp::AllGather => "all_gather",
            CollectiveOp::ReduceScatter => "reduce_scatter",
            CollectiveOp::AllToAll => "all_to_all",
            CollectiveOp::Broadcast => "broadcast",
            CollectiveOp::SendRecv => "send_recv",
        }
    }

    /// nccl-tests' bus-bandwidth correction (doc/PERFORMANCE.md, and `*GetBw` in each
    /// `src/*.cu`): bus bandwidth = algorithm bandwidth × this factor, so the figure is
    /// comparable with the link's peak whatever the number of ranks. All-reduce moves each
    /// element 2(n−1)/n times over the busiest link, all-gather, reduce-scatter and all-to-all
    /// (n−1)/n times, broadcast and send/recv once.
    pub fn bus_bandwidth_factor(self, ranks: u64) -> f64 {
        let n = ranks.max(1) as f64;
        match self {
            CollectiveOp::AllReduce => 2.0 * (n - 1.0) / n,
            CollectiveOp::AllGather | CollectiveOp::ReduceScatter | CollectiveOp::AllToAll => {
                (n - 1.0) / n
            }
            CollectiveOp::Broadcast | CollectiveOp::SendRecv => 1.0,
        }
    }

    /// Elements each rank sends (`send`) and receives (`recv`) for a message of
    /// `total_elements` by nccl-tests' size convention: the size S is the all-reduce buffer,
    /// the whole gathered (all-gather) or scattered (reduce-scatter) buffer, every rank's whole
    /// all-to-all send buffer, the broadcast or the message sent. `None` when S does not split
    /// evenly into the ranks' slices.
    pub fn buffer_elements(self, total_elements: u64, ranks: u64) -> Option<(u64, u64)> {
        let n = ranks.max(1);
        match self {
            CollectiveOp::AllReduce | CollectiveOp::Broadcast | CollectiveOp::SendRecv => {
                Some((total_elements, total_elements))
            }
            CollectiveOp::AllToAll => total_elements
                .is_multiple_of(n)
                .then_some((total_elements, total_elements)),
            CollectiveOp::AllGather => total_elements
                .is_multiple_of(n)
                .then_some((total_elements / n, total_elements)),
            CollectiveOp::ReduceScatter => total_elements
                .is_multiple_of(n)
                .then_some((total_elements, total_elements / n)),
        }
    }
}

/// One benchmark configuration: the kernel and every parameter that changes its work.
///
/// Serialised as `{"kernel": "gemm", "params": {...}}` so a reader can dispatch on the kernel
/// name without knowing every parameter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kernel", content = "params", rename_all = "snake_case")]
pub enum KernelSpec {
    /// `C[m×n] = A[m×k] · B[k×n]`.
    Gemm {
        m: u64,
        n: u64,
        k: u64,
        dtype: Dtype,
    },
    /// STREAM-style kernel over arrays of `array_bytes` bytes each.
    Bandwidth {
        op: BandwidthOp,
        array_bytes: u64,
        dtype: Dtype,
    },
    /// Scaled dot-product attention; with `causal`, query i attends to keys 0..=i only.
    Attention {
        implementation: AttentionImpl,
        batch: u64,
        heads: u64,
        seq_len: u64,
        head_dim: u64,
        dtype: Dtype,
        /// Absent (false) in files from before the option, and left out when false, so that
        /// those files load and re-serialise unchanged.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        causal: bool,
    },
    /// One transformer decoder layer (or one block of it) over `batch × seq_len` tokens.
    Layer {
        pass: Pass,
        part: LayerPart,
        batch: u64,
        seq_len: u64,
        shape: LayerShape,
        dtype: Dtype,
    },
    /// One generation step of `batch` sequences through `layers` decoder layers: every weight
    /// is streamed once (GEMV when batch is 1), and each new token attends over a KV cache of
    /// `context` positions per sequence (its own key and value included, written into the
    /// cache's last slot). `context` 0 is a step without attention (the query passes to the
    /// output projection), what result files from before the field existed measured; it is
    /// then left out of the JSON, so those files read and write back unchanged.
    Decode {
        batch: u64,
        layers: u64,
        shape: LayerShape,
        #[serde(default, skip_serializing_if = "is_zero")]
        context: u64,
        dtype: Dtype,
    },
    /// `elements` values loaded, `fmas_per_element` dependent multiply-adds applied to each,
    /// stored back: raises arithmetic intensity with no change in traffic.
    IntensitySweep {
        elements: u64,
        fmas_per_element: u64,
        dtype: Dtype,
    },
    /// `bytes` copied from GPU `src_device`'s memory to GPU `dst_device`'s (peer to peer).
    PeerCopy {
        src_device: u32,
        dst_device: u32,
        bytes: u64,
    },
    /// `bytes` copied between host memory and GPU `device` (on unified memory: a GPU blit
    /// between a CPU-written and a GPU-private buffer).
    HostTransfer {
        direction: TransferDirection,
        memory: HostMemory,
        device: u32,
        bytes: u64,
    },
    /// One collective over the GPUs `devices` (CUDA ordinals), `bytes` being nccl-tests' size
    /// S (see [`CollectiveOp::buffer_elements`]).
    Collective {
        op: CollectiveOp,
        bytes: u64,
        dtype: Dtype,
        devices: Vec<u32>,
    },
    /// `bytes` sent to or from a peer host, in writes of `message_bytes`, split evenly over
    /// `streams` connections running at once: silirep's own TCP link kernels (`silirep link
    /// serve` on the peer), or another tool's run (iperf3, which also names its `peer` as it
    /// wrote the address, and may have used UDP), so the two compare row for row.
    NetworkTransfer {
        #[serde(default, skip_serializing_if = "NetworkProtocol::is_tcp")]
        protocol: NetworkProtocol,
        direction: LinkDirection,
        streams: u32,
        message_bytes: u64,
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// One `message_bytes` message to the peer and back on an open TCP connection: the
    /// link's round-trip latency at that size.
    NetworkRoundTrip { message_bytes: u64 },
    /// A whole model run by another tool; work counted as `tokens` per iteration.
    Model {
        model: String,
        phase: ModelPhase,
        /// Precision as the tool wrote it (e.g. `float16`, `4-bit quantized`).
        precision: String,
        batch: u64,
        seq_len: u64,
        tokens: u64,
        /// Total parameter count when known; enables the 2·P / 6·P FLOP estimates.
        params: Option<u64>,
    },
}

/// What kind of work a kernel does: the grouping reports use, and what its rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
// Declared in the alphabetical order of their names, so sorting by family sorts by name and
// tables keep the order they had when families were strings.
pub enum KernelFamily {
    Attention,
    Bandwidth,
    Decode,
    Gemm,
    IntensitySweep,
    /// Data moved between devices or machines: peer copies, host transfers, collectives.
    Interconnect,
    Layer,
    /// A whole model run by another tool (prefill, decode, fine-tuning).
    Model,
}

impl KernelFamily {
    /// `gemm`, `bandwidth`, `intensity_sweep`, ...: the name in files, tables and `--kernels`.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Gemm => "gemm",
            KernelFamily::Bandwidth => "bandwidth",
            KernelFamily::Attention => "attention",
            KernelFamily::Layer => "layer",
            KernelFamily::Decode => "decode",
            KernelFamily::IntensitySweep => "intensity_sweep",
            KernelFamily::Model => "model",
            KernelFamily::Interconnect => "interconnect",
        }
    }

    /// What a rate of this family counts: bytes moved for bandwidth and interconnect, tokens
    /// for decode and whole models, FLOPs for the rest. The one rule the console, the report
    /// and the tidy table follow.
    pub fn rate_unit(self) -> RateUnit {
        match self {
            KernelFamily::Bandwidth | KernelFamily::Interconnect => RateUnit::BytePerS,
            KernelFamily::Decode | KernelFamily::Model => RateUnit::TokenPerS,
            _ => RateUnit::FlopPerS,
        }
    }
}

impl fmt::Display for KernelFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a workload's rate is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RateUnit {
    FlopPerS,
    BytePerS,
    TokenPerS,
}

impl RateUnit {
    pub fn symbol(self) -> &'static str {
        match self {
            RateUnit::FlopPerS => "FLOP/s",
            RateUnit::BytePerS => "B/s",
            RateUnit::TokenPerS => "tokens/s",
        }
    }
}

/// Bytes per iteration of a network transfer of `message_bytes` writes: at least the
/// `minimum` (so short messages run long enough to time), a whole number of messages.
pub fn network_transfer_bytes(message_bytes: u64, minimum: u64) -> u64 {
    let message_bytes = message_bytes.max(1);
    minimum.max(message_bytes).div_ceil(message_bytes) * message_bytes
}

impl KernelSpec {
    /// One whole Mistral-7B-shaped decoder layer at batch 1: the layer every backend's suite
    /// measures (each in the precision it runs best).
    pub fn mistral_layer(pass: Pass, seq_len: u64, dtype: Dtype) -> KernelSpec {
        KernelSpec::Layer {
            pass,
            part: LayerPart::Full,
            batch: 1,
            seq_len,
            shape: LayerShape::MISTRAL_7B,
            dtype,
        }
    }

    /// The family used for grouping in reports.
    pub fn family(&self) -> KernelFamily {
        match self {
            KernelSpec::Gemm { .. } => KernelFamily::Gemm,
            KernelSpec::Bandwidth { .. } => KernelFamily::Bandwidth,
            KernelSpec::Attention { .. } => KernelFamily::Attention,
            KernelSpec::Layer { .. } => KernelFamily::Layer,
            KernelSpec::Decode { .. } => KernelFamily::Decode,
            KernelSpec::IntensitySweep { .. } => KernelFamily::IntensitySweep,
            KernelSpec::Model { .. } => KernelFamily::Model,
            KernelSpec::PeerCopy { .. }
            | KernelSpec::HostTransfer { .. }
            | KernelSpec::Collective { .. }
            | KernelSpec::NetworkTransfer { .. }
            | KernelSpec::NetworkRoundTrip { .. } => KernelFamily::Interconnect,
        }
    }

    /// The unit of this kernel's rate and the work of one iteration in it (see
    /// [`KernelFamily::rate_unit`]); `None` where the work is unknown.
    pub fn rate_work(&self) -> Option<(RateUnit, f64)> {
        let unit = self.family().rate_unit();
        let work = match unit {
            RateUnit::BytePerS => self.bytes()?,
            RateUnit::TokenPerS => self.tokens()?,
            RateUnit::FlopPerS => self.flops()?,
        };
        Some((unit, work))
    }

    /// A specific name: `bandwidth_triad`, `attention_fused`, `layer_forward`, ...
    pub fn name(&self) -> String {
        match self {
            KernelSpec::Gemm { .. } => "gemm".into(),
            KernelSpec::Bandwidth { op, .. } => format!("bandwidth_{}", op.name()),
            KernelSpec::Attention { implementation, .. } => match implementation {
                AttentionImpl::Naive => "attention_naive".into(),
                AttentionImpl::Fused => "attention_fused".into(),
                AttentionImpl::Unspecified => "attention".into(),
            },
            KernelSpec::Layer { pass, part, .. } => {
                let pass = match pass {
                    Pass::Forward => "forward",
                    Pass::Backward => "backward",
                };
                match part {
                    LayerPart::Full => format!("layer_{pass}"),
                    LayerPart::Attention => format!("layer_attention_{pass}"),
                    LayerPart::Ffn => format!("layer_ffn_{pass}"),
                }
            }
            KernelSpec::Decode { .. } => "decode".into(),
            KernelSpec::IntensitySweep { .. } => "intensity_sweep".into(),
            KernelSpec::Model { phase, .. } => format!("model_{}", phase.name()),
            KernelSpec::PeerCopy { .. } => "peer_copy".into(),
            KernelSpec::HostTransfer { direction, .. } => match direction {
                TransferDirection::HostToDevice => "host_to_device".into(),
                TransferDirection::DeviceToHost => "device_to_host".into(),
            },
            KernelSpec::Collective { op, .. } => op.name().into(),
            KernelSpec::NetworkTransfer {
                protocol,
                direction,
                ..
            } => format!("{}_{}", protocol.name(), direction.name()),
            KernelSpec::NetworkRoundTrip { .. } => "tcp_round_trip".into(),
        }
    }

    pub fn dtype(&self) -> Option<Dtype> {
        match self {
            KernelSpec::Gemm { dtype, .. }
            | KernelSpec::Bandwidth { dtype, .. }
            | KernelSpec::Attention { dtype, .. }
            | KernelSpec::Layer { dtype, .. }
            | KernelSpec::Decode { dtype, .. }
            | KernelSpec::IntensitySweep { dtype, .. }
            | KernelSpec::Collective { dtype, .. } => Some(*dtype),
            KernelSpec::Model { precision, .. } => Dtype::parse(precision),
            // Bytes are copied, whatever they encode.
            KernelSpec::PeerCopy { .. }
            | KernelSpec::HostTransfer { .. }
            | KernelSpec::NetworkTransfer { .. }
            | KernelSpec::NetworkRoundTrip { .. } => None,
        }
    }

    /// Precision label for grouping, including model-level strings no [`Dtype`] names.
    pub fn precision_label(&self) -> String {
        match self {
            KernelSpec::Model { precision, .. } => match Dtype::parse(precision) {
                Some(d) => d.name().to_string(),
                None => precision.clone(),
            },
            other => other
                .dtype()
                .map(|d| d.name().to_string())
                .unwrap_or_default(),
        }
    }

    /// The one size a user selects configurations by with `--sizes`: GEMM's `m` (square
    /// sweeps), a bandwidth array's bytes, the sequence length of attention and layers, the
    /// decode batch, the sweep's FMAs per element.
    pub fn primary_size(&self) -> u64 {
        match self {
            KernelSpec::Gemm { m, .. } => *m,
            KernelSpec::Bandwidth { array_bytes, .. } => *array_bytes,
            KernelSpec::Attention { seq_len, .. } | KernelSpec::Layer { seq_len, .. } => *seq_len,
            KernelSpec::Decode { batch, .. } => *batch,
            KernelSpec::IntensitySweep {
                fmas_per_element, ..
            } => *fmas_per_element,
            KernelSpec::Model { seq_len, .. } => *seq_len,
            KernelSpec::PeerCopy { bytes, .. }
            | KernelSpec::HostTransfer { bytes, .. }
            | KernelSpec::Collective { bytes, .. } => *bytes,
            // The write size: what a network sweep varies (the bytes per iteration follow).
            KernelSpec::NetworkTransfer { message_bytes, .. }
            | KernelSpec::NetworkRoundTrip { message_bytes } => *message_bytes,
        }
    }

    /// What [`Self::primary_size`] means for this kernel, so a size given in the wrong unit
    /// (bytes for a GEMM dimension) is refused instead of silently reinterpreted.
    pub fn primary_size_meaning(&self) -> SizeMeaning {
        match self {
            KernelSpec::Gemm { .. } => SizeMeaning::MatrixDimension,
            KernelSpec::Bandwidth { .. } => SizeMeaning::ArrayBytes,
            KernelSpec::Attention { .. } | KernelSpec::Layer { .. } | KernelSpec::Model { .. } => {
                SizeMeaning::SequenceLength
            }
            KernelSpec::Decode { .. } => SizeMeaning::Batch,
            KernelSpec::IntensitySweep { .. } => SizeMeaning::FmasPerElement,
            KernelSpec::PeerCopy { .. }
            | KernelSpec::HostTransfer { .. }
            | KernelSpec::Collective { .. }
            | KernelSpec::NetworkTransfer { .. }
            | KernelSpec::NetworkRoundTrip { .. } => SizeMeaning::TransferBytes,
        }
    }

    /// Bytes the configuration's operands occupy at once (inputs, outputs, weights and their
    /// gradients, one attention score matrix): a lower bound on the memory it needs, so a
    /// configuration above the device's memory cannot run and is refused before allocating.
    /// Computed in f64 so absurd sizes give a huge number rather than an overflow.
    /// `None` for imported model runs. Formulas in `docs/results-schema.md`.
    pub fn footprint_bytes(&self) -> Option<f64> {
        let f = |v: u64| v as f64;
        Some(match self {
            KernelSpec::Gemm { m, n, k, dtype } => {
                let out_size = gemm_output_size(*dtype);
                dtype.size_bytes() * (f(*m) * f(*k) + f(*k) * f(*n)) + out_size * f(*m) * f(*n)
            }
            KernelSpec::Bandwidth {
                op, array_bytes, ..
            } => f(op.arrays_touched()) * f(*array_bytes),
            KernelSpec::Attention {
                implementation,
                batch,
                heads,
                seq_len,
                head_dim,
                dtype,
                ..
            } => {
                let es = dtype.size_bytes();
                let qkvo = 4.0 * f(*batch) * f(*heads) * f(*seq_len) * f(*head_dim) * es;
                match implementation {
                    AttentionImpl::Naive => qkvo + f(*batch) * f(*heads) * f(*seq_len).powi(2) * es,
                    AttentionImpl::Fused | AttentionImpl::Unspecified => qkvo,
                }
            }
            KernelSpec::Layer {
                pass,
                part,
                batch,
                seq_len,
                shape,
                dtype,
            } => {
                let es = dtype.size_bytes();
                let weights = f(shape.weights(*part)) * es;
                let activation = f(*batch) * f(*seq_len) * f(shape.hidden) * es;
                match pass {
                    Pass::Forward => weights + 2.0 * activation,
                    Pass::Backward => 2.0 * weights + 3.0 * activation,
                }
            }
            KernelSpec::Decode {
                batch,
                layers,
                shape,
                context,
                dtype,
            } => {
                let es = dtype.size_bytes();
                // Weights, the activations in and out, and every layer's KV cache.
                let cache = 2.0 * f(*batch) * f(*context) * f(shape.kv_heads * shape.head_dim);
                f(*layers) * f(shape.weights(LayerPart::Full)) * es
                    + 2.0 * f(*batch) * f(shape.hidden) * es
                    + f(*layers) * cache * es
            }
            KernelSpec::IntensitySweep {
                elements, dtype, ..
            } => f(*elements) * dtype.size_bytes(),
            KernelSpec::Model { .. } => return None,
            // On each GPU: a transfer's one buffer there, a collective's input and output.
            KernelSpec::PeerCopy { bytes, .. } | KernelSpec::HostTransfer { bytes, .. } => {
                f(*bytes)
            }
            // One message buffer per stream on each side; the bytes stream through it.
            KernelSpec::NetworkTransfer {
                streams,
                message_bytes,
                ..
            } => f(u64::from(*streams)) * f(*message_bytes),
            KernelSpec::NetworkRoundTrip { message_bytes } => 2.0 * f(*message_bytes),
            KernelSpec::Collective {
                op,
                bytes,
                dtype,
                devices,
            } => {
                let n = (devices.len() as u64).max(1);
                let es = dtype.size_bytes();
                let elements = (f(*bytes) / es) as u64;
                match op.buffer_elements(elements, n) {
                    Some((send, recv)) => (f(send) + f(recv)) * es,
                    None => 2.0 * f(*bytes),
                }
            }
        })
    }

    /// The same configuration at another [`Self::primary_size`] (square GEMMs stay square).
    pub fn with_primary_size(&self, size: u64) -> KernelSpec {
        let mut spec = self.clone();
        match &mut spec {
            KernelSpec::Gemm { m, n, k, .. } => {
                if *m == *n && *n == *k {
                    (*m, *n, *k) = (size, size, size);
                } else {
                    *m = size;
                }
            }
            KernelSpec::Bandwidth { array_bytes, .. } => *array_bytes = size,
            KernelSpec::Attention { seq_len, .. }
            | KernelSpec::Layer { seq_len, .. }
            | KernelSpec::Model { seq_len, .. } => *seq_len = size,
            KernelSpec::Decode { batch, .. } => *batch = size,
            KernelSpec::IntensitySweep {
                fmas_per_element, ..
            } => *fmas_per_element = size,
            KernelSpec::PeerCopy { bytes, .. }
            | KernelSpec::HostTransfer { bytes, .. }
            | KernelSpec::Collective { bytes, .. } => *bytes = size,
            KernelSpec::NetworkTransfer {
                message_bytes,
                bytes,
                ..
            } => {
                *bytes = network_transfer_bytes(size, *bytes);
                *message_bytes = size;
            }
            KernelSpec::NetworkRoundTrip { message_bytes } => *message_bytes = size,
        }
        spec
    }

    /// Parameters other than the dtype, as `key=value` pairs in a fixed order: the
    /// configuration's identity within its kernel in tables and comparisons.
    pub fn params_label(&self) -> String {
        match self {
            KernelSpec::Gemm { m, n, k, .. } => format!("m={m} n={n} k={k}"),
            KernelSpec::Bandwidth { array_bytes, .. } => format!("array_bytes={array_bytes}"),
            KernelSpec::Attention {
                batch,
                heads,
                seq_len,
                head_dim,
                causal,
                ..
            } => format!(
                "batch={batch} heads={heads} seq_len={seq_len} head_dim={head_dim}{}",
                if *causal { " causal" } else { "" }
            ),
            KernelSpec::Layer {
                batch,
                seq_len,
                shape,
                ..
            } => format!("batch={batch} seq_len={seq_len} {}", shape_label(shape)),
            KernelSpec::Decode {
                batch,
                layers,
                shape,
                context,
                ..
            } => {
                // No `context=` for steps without attention: their labels stay as they were.
                let context = if *context > 0 {
                    format!(" context={context}")
                } else {
                    String::new()
                };
                format!(
                    "batch={batch} layers={layers}{context} {}",
                    shape_label(shape)
                )
            }
            KernelSpec::IntensitySweep {
                elements,
                fmas_per_element,
                ..
            } => format!("elements={elements} fmas_per_element={fmas_per_element}"),
            KernelSpec::Model {
                model,
                batch,
                seq_len,
                tokens,
                ..
            } => format!("model={model} batch={batch} seq_len={seq_len} tokens={tokens}"),
            KernelSpec::PeerCopy {
                src_device,
                dst_device,
                bytes,
            } => format!("src_device={src_device} dst_device={dst_device} bytes={bytes}"),
            KernelSpec::HostTransfer {
                memory,
                device,
                bytes,
                ..
            } => format!("memory={} device={device} bytes={bytes}", memory.name()),
            KernelSpec::Collective { devices, bytes, .. } => {
                format!("devices={} bytes={bytes}", devices_label(devices))
            }
            KernelSpec::NetworkTransfer {
                streams,
                message_bytes,
                bytes,
                peer,
                ..
            } => format!(
                "streams={streams} message_bytes={message_bytes} bytes={bytes}{}",
                peer.as_ref()
                    .map(|p| format!(" peer={p}"))
                    .unwrap_or_default()
            ),
            KernelSpec::NetworkRoundTrip { message_bytes } => {
                format!("message_bytes={message_bytes}")
            }
        }
    }

    /// Floating-point operations of one iteration (a multiply-add counts 2).
    ///
    /// `None` where the work cannot be counted (a model run without a parameter count).
    pub fn flops(&self) -> Option<f64> {
        Some(match self {
            KernelSpec::Gemm { m, n, k, .. } => 2.0 * (*m as f64) * (*n as f64) * (*k as f64),
            KernelSpec::Bandwidth {
                op,
                array_bytes,
                dtype,
            } => op.flops_per_element() as f64 * (*array_bytes as f64 / dtype.size_bytes()),
            KernelSpec::Attention {
                batch,
                heads,
                seq_len,
                head_dim,
                causal,
                ..
            } => {
                let full = attention_flops(*batch, *heads, *seq_len, *head_dim);
                // FlashAttention's convention: causal attention counts half the full product
                // (the masked half is not work, whether or not a kernel skips it).
                if *causal { full / 2.0 } else { full }
            }
            KernelSpec::Layer {
                pass,
                part,
                batch,
                seq_len,
                shape,
                ..
            } => {
                let tokens = (*batch * *seq_len) as f64;
                let mut forward = 2.0 * tokens * shape.weights(*part) as f64;
                if matches!(part, LayerPart::Full | LayerPart::Attention) {
                    forward += attention_flops(*batch, shape.heads, *seq_len, shape.head_dim);
                }
                match pass {
                    Pass::Forward => forward,
                    // Gradients w.r.t. inputs and w.r.t. weights: two GEMMs per forward GEMM.
                    Pass::Backward => 2.0 * forward,
                }
            }
            // 2 per weight per token, plus attention of each new token over the `context`
            // positions it attends (its own included): Q·Kᵀ and P·V, 2·context·head_dim each
            // per head.
            KernelSpec::Decode {
                batch,
                layers,
                shape,
                context,
                ..
            } => {
                // In f64: a user's --decode-context can make the product exceed u64.
                let f = |v: u64| v as f64;
                2.0 * f(*batch) * f(*layers) * f(shape.weights(LayerPart::Full))
                    + 4.0
                        * f(*layers)
                        * f(*batch)
                        * f(shape.heads)
                        * f(*context)
                        * f(shape.head_dim)
            }
            KernelSpec::IntensitySweep {
                elements,
                fmas_per_element,
                ..
            } => 2.0 * (*elements as f64) * (*fmas_per_element as f64),
            KernelSpec::Model {
                phase,
                tokens,
                params,
                ..
            } => {
                let params = (*params)? as f64;
                // Kaplan et al. (2020): forward ≈ 2·P FLOPs per token, training ≈ 6·P.
                let per_token = match phase {
                    ModelPhase::Prefill | ModelPhase::Decode => 2.0 * params,
                    ModelPhase::Train => 6.0 * params,
                    // Moving a cache and a whole request's stages are not counted as FLOPs.
                    ModelPhase::KvTransfer | ModelPhase::EndToEnd => return None,
                };
                per_token * (*tokens as f64)
            }
            // Moving bytes is the work; the additions of a reduction are not counted, as in
            // nccl-tests.
            KernelSpec::PeerCopy { .. }
            | KernelSpec::HostTransfer { .. }
            | KernelSpec::Collective { .. }
            | KernelSpec::NetworkTransfer { .. }
            | KernelSpec::NetworkRoundTrip { .. } => return None,
        })
    }

    /// Minimum bytes one iteration must move to or from memory: each operand read once and
    /// each result written once. Caches can only make the real traffic larger, so the
    /// arithmetic intensity derived from this is an upper bound.
    pub fn bytes(&self) -> Option<f64> {
        Some(match self {
            KernelSpec::Gemm { m, n, k, dtype } => {
                let (m, n, k) = (*m as f64, *n as f64, *k as f64);
                dtype.size_bytes() * (m * k + k * n) + gemm_output_size(*dtype) * m * n
            }
            KernelSpec::Bandwidth {
                op, array_bytes, ..
            } => (op.arrays_touched() * array_bytes) as f64,
            KernelSpec::Attention {
                implementation,
                batch,
                heads,
                seq_len,
                head_dim,
                dtype,
                ..
            } => {
                let es = dtype.size_bytes();
                let qkvo = 4.0 * (batch * heads * seq_len * head_dim) as f64 * es;
                let scores = (batch * heads * seq_len * seq_len) as f64 * es;
                match implementation {
                    // S written by the first GEMM, read and P written by the softmax, P read
                    // by the second GEMM.
                    AttentionImpl::Naive => qkvo + 4.0 * scores,
                    AttentionImpl::Fused | AttentionImpl::Unspecified => qkvo,
                }
            }
            KernelSpec::Layer {
                pass,
                part,
                batch,
                seq_len,
                shape,
                dtype,
            } => {
                let es = dtype.size_bytes();
                let weights = shape.weights(*part) as f64 * es;
                let activation = (batch * seq_len * shape.hidden) as f64 * es;
                match pass {
                    // Weights read, layer input read, output written.
                    Pass::Forward => weights + 2.0 * activation,
                    // Weights read, weight gradients written, input and output gradient read,
                    // input gradient written.
                    Pass::Backward => 2.0 * weights + 3.0 * activation,
                }
            }
            KernelSpec::Decode {
                batch,
                layers,
                shape,
                context,
                dtype,
            } => {
                let es = dtype.size_bytes();
                let weights = (*layers * shape.weights(LayerPart::Full)) as f64 * es;
                // Weights once, each layer's input read and output written, and the KV cache
                // (`decode_kv_bytes`) of every layer.
                weights
                    + 2.0 * (*batch * *layers * shape.hidden) as f64 * es
                    + *layers as f64 * decode_kv_bytes(*batch, *context, shape, es)
            }
            KernelSpec::IntensitySweep {
                elements, dtype, ..
            } => 2.0 * (*elements as f64) * dtype.size_bytes(),
            KernelSpec::Model { .. } => return None,
            // What crosses the link once; see `bus_bytes` for the collectives' bus traffic.
            KernelSpec::PeerCopy { bytes, .. }
            | KernelSpec::HostTransfer { bytes, .. }
            | KernelSpec::Collective { bytes, .. }
            | KernelSpec::NetworkTransfer { bytes, .. } => *bytes as f64,
            // The message out and back: what crossed the link in one round trip.
            KernelSpec::NetworkRoundTrip { message_bytes } => 2.0 * *message_bytes as f64,
        })
    }

    /// Bytes behind a bus bandwidth: for a collective, S × nccl-tests' bus-bandwidth factor
    /// for its number of ranks ([`CollectiveOp::bus_bandwidth_factor`]), so
    /// `bus_bytes / time` is nccl-tests' `busbw` while `bytes / time` is its `algbw`. For a
    /// copy the two are the same. `None` for kernels that are not transfers.
    pub fn bus_bytes(&self) -> Option<f64> {
        match self {
            KernelSpec::Collective {
                op, bytes, devices, ..
            } => Some(*bytes as f64 * op.bus_bandwidth_factor(devices.len() as u64)),
            KernelSpec::PeerCopy { bytes, .. }
            | KernelSpec::HostTransfer { bytes, .. }
            | KernelSpec::NetworkTransfer { bytes, .. } => Some(*bytes as f64),
            _ => None,
        }
    }

    /// The devices a measurement involves beyond the backend's own: GPU ordinals of a
    /// transfer or collective, empty for single-device kernels.
    pub fn devices(&self) -> Vec<u32> {
        match self {
            KernelSpec::PeerCopy {
                src_device,
                dst_device,
                ..
            } => vec![*src_device, *dst_device],
            KernelSpec::HostTransfer { device, .. } => vec![*device],
            KernelSpec::Collective { devices, .. } => devices.clone(),
            _ => Vec::new(),
        }
    }

    /// Tokens processed per iteration, for kernels whose natural rate is tokens/s.
    pub fn tokens(&self) -> Option<f64> {
        match self {
            KernelSpec::Layer { batch, seq_len, .. } => Some((batch * seq_len) as f64),
            KernelSpec::Decode { batch, .. } => Some(*batch as f64),
            KernelSpec::Model { tokens, .. } => Some(*tokens as f64),
            _ => None,
        }
    }

    /// For a decode step through fewer layers than its model has (the CPU backend decodes
    /// one Mistral-7B layer, GPUs all 32): the model's layer count and the tokens/s the whole
    /// model would decode at, `tokens_per_s · layers / model_layers`. Decode streams every
    /// layer's weights once, so its time grows in proportion to the layers. `None` for other
    /// kernels and for decodes that already run the whole model.
    pub fn whole_model_decode_rate(&self, tokens_per_s: f64) -> Option<(u64, f64)> {
        let KernelSpec::Decode { layers, shape, .. } = self else {
            return None;
        };
        let model_layers = shape.model_layers()?;
        (*layers < model_layers && *layers > 0).then(|| {
            (
                model_layers,
                tokens_per_s * *layers as f64 / model_layers as f64,
            )
        })
    }

    /// FLOPs per byte by [`Self::flops`] and [`Self::bytes`].
    pub fn arithmetic_intensity(&self) -> Option<f64> {
        let bytes = self.bytes()?;
        let flops = self.flops()?;
        (bytes > 0.0).then(|| flops / bytes)
    }
}

/// `0,1,2`: GPU ordinals as `--gpus` takes them.
pub fn devices_label(devices: &[u32]) -> String {
    devices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Bytes of one GEMM result element: fp8 GEMMs write a 16-bit result; int8 accumulates
/// into int32.
fn gemm_output_size(dtype: Dtype) -> f64 {
    match dtype {
        Dtype::Fp8E4m3 => 2.0,
        Dtype::Int8 => 4.0,
        other => other.size_bytes(),
    }
}

/// What the one user-selectable size of a kernel ([`KernelSpec::primary_size`]) counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SizeMeaning {
    /// GEMM `m` (and `n`, `k` for square GEMMs): a number of rows, not bytes.
    MatrixDimension,
    /// Bytes of each array a bandwidth kernel streams.
    ArrayBytes,
    /// Tokens per sequence (attention, layers).
    SequenceLength,
    /// Sequences decoded together.
    Batch,
    /// Dependent multiply-adds per element of the intensity sweep.
    FmasPerElement,
    /// Bytes moved by one transfer or collective (nccl-tests' size S for collectives).
    TransferBytes,
}

impl SizeMeaning {
    /// Whether the size is a byte count (given with a byte unit) rather than a plain count.
    pub fn is_bytes(self) -> bool {
        matches!(self, SizeMeaning::ArrayBytes | SizeMeaning::TransferBytes)
    }

    /// For messages: what a size of this kernel is.
    pub fn describe(self) -> &'static str {
        match self {
            SizeMeaning::MatrixDimension => "the matrix dimension (m = n = k for square GEMMs)",
            SizeMeaning::ArrayBytes => "the bytes of each array",
            SizeMeaning::SequenceLength => "the sequence length in tokens",
            SizeMeaning::Batch => "the batch (sequences decoded together)",
            SizeMeaning::FmasPerElement => "the multiply-adds per element",
            SizeMeaning::TransferBytes => "the bytes one transfer or collective moves",
        }
    }

    /// A valid example, for messages.
    pub fn example(self) -> &'static str {
        match self {
            SizeMeaning::MatrixDimension => "4096",
            SizeMeaning::ArrayBytes => "256MiB",
            SizeMeaning::SequenceLength => "1024",
            SizeMeaning::Batch => "1",
            SizeMeaning::FmasPerElement => "64",
            SizeMeaning::TransferBytes => "1GiB",
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The KV-cache context the suites decode at: 1024 positions, a short chat turn's history.
/// Long enough that attention over the cache is real work at large batches (at batch 64 the
/// cache reads are ~60% of the weight bytes for Mistral-7B), short enough that batch 1 stays
/// the weight-streaming regime decode is known for (the cache is <1% of its bytes).
pub const DECODE_CONTEXT: u64 = 1024;

/// Bytes of the KV cache one decode step must move in each layer: every sequence's
/// `context` − 1 earlier keys and values read and the new token's written (a fused kernel need
/// not read its own back), so `context` key and value rows per sequence. This is
/// `silirep-model`'s decode step with a cache of C = `context` − 1 tokens (docs/model.md).
pub fn decode_kv_bytes(batch: u64, context: u64, shape: &LayerShape, element_bytes: f64) -> f64 {
    let kv = (shape.kv_heads * shape.head_dim) as f64;
    2.0 * batch as f64 * context as f64 * kv * element_bytes
}

fn shape_label(shape: &LayerShape) -> String {
    format!(
        "hidden={} heads={} kv_heads={} head_dim={} intermediate={}",
        shape.hidden, shape.heads, shape.kv_heads, shape.head_dim, shape.intermediate
    )
}

/// `Q·Kᵀ` and `P·V`, each 2·s²·d per head: 4·b·h·s²·d. Softmax and scaling are not counted,
/// as in the flash-attention papers, so fused and naive rates compare directly.
pub fn attention_flops(batch: u64, heads: u64, seq_len: u64, head_dim: u64) -> f64 {
    4.0 * (batch * heads) as f64 * (seq_len as f64).powi(2) * head_dim as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_sort_by_name() {
        let families = [
            KernelFamily::Attention,
            KernelFamily::Bandwidth,
            KernelFamily::Decode,
            KernelFamily::Gemm,
            KernelFamily::IntensitySweep,
            KernelFamily::Interconnect,
            KernelFamily::Layer,
            KernelFamily::Model,
        ];
        let mut by_name = families;
        by_name.sort_by_key(|f| f.name());
        assert_eq!(by_name, families);
        assert!(families.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn gemm_counts_two_mnk() {
        let g = KernelSpec::Gemm {
            m: 512,
            n: 256,
            k: 128,
            dtype: Dtype::F16,
        };
        assert_eq!(g.flops(), Some(2.0 * 512.0 * 256.0 * 128.0));
        assert_eq!(
            g.bytes(),
            Some(2.0 * (512.0 * 128.0 + 128.0 * 256.0 + 512.0 * 256.0))
        );
    }

    #[test]
    fn stream_byte_rules() {
        let n = 1_000_000u64;
        let bytes = |op| {
            KernelSpec::Bandwidth {
                op,
                array_bytes: n * 8,
                dtype: Dtype::F64,
            }
            .bytes()
            .unwrap()
        };
        assert_eq!(bytes(BandwidthOp::Copy), 2.0 * n as f64 * 8.0);
        assert_eq!(bytes(BandwidthOp::Triad), 3.0 * n as f64 * 8.0);
        assert_eq!(bytes(BandwidthOp::Read), n as f64 * 8.0);
        let triad = KernelSpec::Bandwidth {
            op: BandwidthOp::Triad,
            array_bytes: n * 8,
            dtype: Dtype::F64,
        };
        assert_eq!(triad.flops(), Some(2.0 * n as f64));
    }

    #[test]
    fn attention_is_four_b_h_s2_d_and_naive_moves_the_scores() {
        let spec = |implementation| KernelSpec::Attention {
            implementation,
            batch: 1,
            heads: 32,
            seq_len: 512,
            head_dim: 128,
            dtype: Dtype::F16,
            causal: false,
        };
        // 4·1·32·512²·128, the count mac-ml-benchmark's published TFLOP/s imply.
        assert_eq!(spec(AttentionImpl::Fused).flops(), Some(4294967296.0));
        let fused = spec(AttentionImpl::Fused).bytes().unwrap();
        let naive = spec(AttentionImpl::Naive).bytes().unwrap();
        assert_eq!(naive - fused, 4.0 * 32.0 * 512.0 * 512.0 * 2.0);
    }

    #[test]
    fn causal_attention_counts_half_and_serialises_only_when_set() {
        let spec = |causal| KernelSpec::Attention {
            implementation: AttentionImpl::Fused,
            batch: 1,
            heads: 32,
            seq_len: 4096,
            head_dim: 128,
            dtype: Dtype::Bf16,
            causal,
        };
        assert_eq!(
            spec(true).flops().unwrap() * 2.0,
            spec(false).flops().unwrap()
        );
        assert_eq!(spec(true).bytes(), spec(false).bytes());
        assert!(spec(true).params_label().ends_with("head_dim=128 causal"));
        assert!(spec(false).params_label().ends_with("head_dim=128"));
        // Files written before the option (no `causal` key) load as non-causal and
        // re-serialise without the key; a causal spec keeps it.
        let plain = serde_json::to_string(&spec(false)).unwrap();
        assert!(!plain.contains("causal"));
        let old = r#"{"kernel":"attention","params":{"implementation":"fused","batch":1,"heads":32,"seq_len":4096,"head_dim":128,"dtype":"bf16"}}"#;
        let loaded: KernelSpec = serde_json::from_str(old).unwrap();
        assert_eq!(loaded, spec(false));
        assert_eq!(serde_json::to_string(&loaded).unwrap(), old);
        let causal = serde_json::to_string(&spec(true)).unwrap();
        assert!(causal.contains(r#""causal":true"#));
        assert_eq!(
            serde_json::from_str::<KernelSpec>(&causal).unwrap(),
            spec(true)
        );
    }

    #[test]
    fn layer_flops_match_a_hand_count_for_mistral() {
        let shape = LayerShape::MISTRAL_7B;
        // Q,O: 4096·4096 each; K,V: 4096·1024 each; FFN: 3·4096·14336.
        assert_eq!(shape.weights(LayerPart::Full), 218_103_808);
        let fwd = KernelSpec::Layer {
            pass: Pass::Forward,
            part: LayerPart::Full,
            batch: 1,
            seq_len: 256,
            shape,
            dtype: Dtype::F16,
        };
        let expected = 2.0 * 256.0 * 218_103_808.0 + 4.0 * 32.0 * 256.0 * 256.0 * 128.0;
        assert_eq!(fwd.flops(), Some(expected));
        let bwd = KernelSpec::Layer {
            pass: Pass::Backward,
            part: LayerPart::Full,
            batch: 1,
            seq_len: 256,
            shape,
            dtype: Dtype::F16,
        };
        assert_eq!(bwd.flops(), Some(2.0 * expected));
    }

    #[test]
    fn decode_streams_every_weight_once() {
        let d = KernelSpec::Decode {
            batch: 1,
            layers: 32,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F16,
        };
        let weights = 32.0 * 218_103_808.0;
        assert_eq!(d.flops(), Some(2.0 * weights));
        assert!((d.bytes().unwrap() - 2.0 * weights).abs() < 1e6);
        assert_eq!(d.tokens(), Some(1.0));
    }

    #[test]
    fn decode_counts_the_kv_cache() {
        let shape = LayerShape::MISTRAL_7B;
        let at = |batch, context| KernelSpec::Decode {
            batch,
            layers: 32,
            shape,
            context,
            dtype: Dtype::F16,
        };
        let none = at(16, 0);
        let with = at(16, 1024);
        // K and V of 8 heads × 128 dims: 1023 earlier positions read and the new one
        // written, per sequence and layer, 2 bytes each.
        let kv = 32.0 * 16.0 * 2.0 * 1024.0 * 1024.0 * 2.0;
        assert_eq!(with.bytes().unwrap() - none.bytes().unwrap(), kv);
        // 4·batch·heads·context·head_dim per layer.
        let attention = 32.0 * 4.0 * 16.0 * 32.0 * 1024.0 * 128.0;
        assert_eq!(with.flops().unwrap() - none.flops().unwrap(), attention);
        assert_eq!(
            with.params_label(),
            "batch=16 layers=32 context=1024 hidden=4096 heads=32 kv_heads=8 head_dim=128 intermediate=14336"
        );
        assert_eq!(
            none.params_label(),
            "batch=16 layers=32 hidden=4096 heads=32 kv_heads=8 head_dim=128 intermediate=14336"
        );
    }

    #[test]
    fn decode_without_context_reads_and_writes_as_before() {
        // A step without a KV cache writes no `context` key, so it serializes exactly as
        // before the field existed, and such JSON (every older result file) reads back as
        // context 0.
        let old = KernelSpec::Decode {
            batch: 1,
            layers: 32,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F16,
        };
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("context"), "{json}");
        assert!(json.contains(r#""batch":1,"layers":32,"shape":"#), "{json}");
        assert_eq!(serde_json::from_str::<KernelSpec>(&json).unwrap(), old);
        let new = KernelSpec::Decode {
            batch: 1,
            layers: 32,
            shape: LayerShape::MISTRAL_7B,
            context: 1024,
            dtype: Dtype::F16,
        };
        let json = serde_json::to_string(&new).unwrap();
        assert!(json.contains(r#""context":1024"#));
        assert_eq!(serde_json::from_str::<KernelSpec>(&json).unwrap(), new);
    }

    #[test]
    fn one_decoded_layer_implies_the_whole_model_rate() {
        let one_layer = KernelSpec::Decode {
            batch: 1,
            layers: 1,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F32,
        };
        assert_eq!(one_layer.whole_model_decode_rate(32.0), Some((32, 1.0)));
        let all = KernelSpec::Decode {
            batch: 1,
            layers: 32,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F16,
        };
        assert_eq!(all.whole_model_decode_rate(20.0), None);
    }

    #[test]
    fn model_without_param_count_has_no_flops() {
        let m = KernelSpec::Model {
            model: "m".into(),
            phase: ModelPhase::Decode,
            precision: "4-bit quantized".into(),
            batch: 1,
            seq_len: 1,
            tokens: 1,
            params: None,
        };
        assert_eq!(m.flops(), None);
        assert_eq!(m.precision_label(), "4-bit quantized");
    }

    #[test]
    fn spec_round_trips_through_json_with_kernel_tag() {
        let spec = KernelSpec::Bandwidth {
            op: BandwidthOp::Triad,
            array_bytes: 1 << 30,
            dtype: Dtype::F32,
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["kernel"], "bandwidth");
        assert_eq!(json["params"]["op"], "triad");
        let back: KernelSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn primary_size_round_trips() {
        let g = KernelSpec::Gemm {
            m: 512,
            n: 512,
            k: 512,
            dtype: Dtype::F32,
        };
        let big = g.with_primary_size(2048);
        assert_eq!(big.primary_size(), 2048);
        assert_eq!(big.flops(), Some(2.0 * 2048f64.powi(3)));
    }

    #[test]
    fn imported_phases_and_network_transfers_count_what_they_move() {
        let kv = KernelSpec::Model {
            model: "m".into(),
            phase: ModelPhase::KvTransfer,
            precision: "float16".into(),
            batch: 1,
            seq_len: 871,
            tokens: 871,
            params: Some(7_000_000_000),
        };
        assert_eq!(kv.name(), "model_kv_transfer");
        // Moving a cache is not arithmetic, whatever the model's size.
        assert_eq!(kv.flops(), None);
        assert_eq!(kv.tokens(), Some(871.0));
        // An iperf3 run: silirep's own kind of transfer, with the peer as iperf3 wrote it.
        let net = KernelSpec::NetworkTransfer {
            protocol: NetworkProtocol::Tcp,
            direction: LinkDirection::FromPeer,
            streams: 4,
            message_bytes: 131072,
            bytes: 1000,
            peer: Some("10.0.0.2".into()),
        };
        assert_eq!(net.name(), "tcp_from_peer");
        assert_eq!(net.family(), KernelFamily::Interconnect);
        assert_eq!(
            (net.bytes(), net.bus_bytes(), net.flops()),
            (Some(1000.0), Some(1000.0), None)
        );
        assert_eq!(
            net.params_label(),
            "streams=4 message_bytes=131072 bytes=1000 peer=10.0.0.2"
        );
        let text = serde_json::to_string(&net).unwrap();
        assert_eq!(serde_json::from_str::<KernelSpec>(&text).unwrap(), net);
    }

    /// nccl-tests' `*GetBw` factors (src/all_reduce.cu: 2(n−1)/n; all_gather.cu,
    /// reduce_scatter.cu, alltoall.cu: (n−1)/n; broadcast.cu, sendrecv.cu: 1), at 2 and 8 ranks.
    #[test]
    fn bus_bandwidth_factors_match_nccl_tests() {
        let cases = [
            (CollectiveOp::AllReduce, 2, 1.0),
            (CollectiveOp::AllReduce, 8, 1.75),
            (CollectiveOp::AllGather, 2, 0.5),
            (CollectiveOp::AllGather, 8, 0.875),
            (CollectiveOp::ReduceScatter, 4, 0.75),
            (CollectiveOp::AllToAll, 8, 0.875),
            (CollectiveOp::Broadcast, 8, 1.0),
            (CollectiveOp::SendRecv, 2, 1.0),
            (CollectiveOp::AllReduce, 1, 0.0),
        ];
        for (op, ranks, factor) in cases {
            assert_eq!(op.bus_bandwidth_factor(ranks), factor, "{op:?} × {ranks}");
        }
        let spec = KernelSpec::Collective {
            op: CollectiveOp::AllReduce,
            bytes: 1 << 30,
            dtype: Dtype::F32,
            devices: (0..8).collect(),
        };
        assert_eq!(spec.bytes(), Some((1u64 << 30) as f64));
        assert_eq!(spec.bus_bytes(), Some(1.75 * (1u64 << 30) as f64));
        assert_eq!(spec.flops(), None);
        assert_eq!(spec.family(), KernelFamily::Interconnect);
        assert_eq!(spec.name(), "all_reduce");
        assert_eq!(
            spec.params_label(),
            "devices=0,1,2,3,4,5,6,7 bytes=1073741824"
        );
    }

    #[test]
    fn collective_buffers_follow_nccl_tests_sizes() {
        // S = 1024 elements over 4 ranks.
        let n = 4;
        assert_eq!(
            CollectiveOp::AllReduce.buffer_elements(1024, n),
            Some((1024, 1024))
        );
        assert_eq!(
            CollectiveOp::AllGather.buffer_elements(1024, n),
            Some((256, 1024))
        );
        assert_eq!(
            CollectiveOp::ReduceScatter.buffer_elements(1024, n),
            Some((1024, 256))
        );
        assert_eq!(
            CollectiveOp::AllToAll.buffer_elements(1024, n),
            Some((1024, 1024))
        );
        assert_eq!(CollectiveOp::AllGather.buffer_elements(1023, n), None);
    }

    #[test]
    fn transfers_count_the_bytes_that_cross_the_link() {
        let p2p = KernelSpec::PeerCopy {
            src_device: 1,
            dst_device: 0,
            bytes: 4096,
        };
        assert_eq!(p2p.bytes(), Some(4096.0));
        assert_eq!(p2p.bus_bytes(), Some(4096.0));
        assert_eq!(p2p.devices(), vec![1, 0]);
        assert_eq!(p2p.name(), "peer_copy");
        assert_eq!(p2p.dtype(), None);
        let h2d = KernelSpec::HostTransfer {
            direction: TransferDirection::HostToDevice,
            memory: HostMemory::Pinned,
            device: 0,
            bytes: 1 << 20,
        };
        assert_eq!(h2d.name(), "host_to_device");
        assert_eq!(h2d.with_primary_size(64).bytes(), Some(64.0));
        let json = serde_json::to_value(&h2d).unwrap();
        assert_eq!(json["kernel"], "host_transfer");
        assert_eq!(json["params"]["direction"], "host_to_device");
        assert_eq!(json["params"]["memory"], "pinned");
        let back: KernelSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, h2d);
    }

    #[test]
    fn footprint_counts_resident_operands_without_overflow() {
        let g = KernelSpec::Gemm {
            m: 1024,
            n: 1024,
            k: 1024,
            dtype: Dtype::F32,
        };
        assert_eq!(g.footprint_bytes(), Some(3.0 * 4.0 * 1024.0 * 1024.0));
        // `--sizes 1GB` read as a dimension: 3·10^18 f32 elements, counted without wrapping.
        let absurd = g.with_primary_size(1_000_000_000);
        assert_eq!(absurd.footprint_bytes(), Some(1.2e19));
        let naive = KernelSpec::Attention {
            implementation: AttentionImpl::Naive,
            batch: 1,
            heads: 2,
            seq_len: 8,
            head_dim: 4,
            dtype: Dtype::F32,
            causal: false,
        };
        // Q, K, V, O (4·2·8·4 floats) and one 2×8×8 score matrix.
        assert_eq!(naive.footprint_bytes(), Some((4.0 * 64.0 + 128.0) * 4.0));
        assert_eq!(g.primary_size_meaning(), SizeMeaning::MatrixDimension);
        assert!(!SizeMeaning::MatrixDimension.is_bytes());
    }

    #[test]
    fn dtype_parses_foreign_spellings() {
        assert_eq!(Dtype::parse("float16"), Some(Dtype::F16));
        assert_eq!(Dtype::parse("bfloat16"), Some(Dtype::Bf16));
        assert_eq!(Dtype::parse("4-bit quantized"), None);
    }
}
