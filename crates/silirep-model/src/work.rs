//! How much work each phase of a transformer's life does: FLOPs, and the bytes it must move
//! through memory (weights read, KV cache read and written, activations, gradients, optimizer
//! state) or over a link (tensor- and expert-parallel collectives).
//!
//! Rules, shared with `docs/results-schema.md`: a multiply-add is 2 FLOPs; bytes are the
//! *minimum* traffic (every weight read once per pass, activations only where a layer hands
//! them to the next), so a prediction built from them is a bound, never an estimate of waste.
//! Softmax, norms, rotary embeddings and activation functions are not counted (they are a few
//! FLOPs per element against thousands per weight). The formulas are written out, with their
//! reasoning, in `docs/model.md`; a change here must change that document too.

use crate::error::ModelError;
use crate::shape::ModelShape;
use serde::{Deserialize, Serialize};
use silirep_core::Dtype;

/// Bytes a phase moves through memory, by what they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ByteBreakdown {
    /// Weights read (every pass over the model reads each weight it uses once).
    pub weights: f64,
    /// KV cache read by attention.
    pub kv_read: f64,
    /// KV cache written (the keys and values of new tokens).
    pub kv_written: f64,
    /// Activations handed between layers, and logits.
    pub activations: f64,
    /// Weight gradients written by the backward pass.
    pub gradients: f64,
    /// The optimizer's reads and writes of gradients, weights and its own state.
    pub optimizer: f64,
}

impl ByteBreakdown {
    /// Sum of every category.
    pub fn total(&self) -> f64 {
        self.weights
            + self.kv_read
            + self.kv_written
            + self.activations
            + self.gradients
            + self.optimizer
    }
}

/// Bytes a phase sends over a named link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkTraffic {
    /// The link's name, matching a [`crate::RoofKind::Link`] roof.
    pub link: String,
    /// Bytes each side sends (links are taken as full duplex: both directions at once).
    pub bytes: f64,
}

/// The work of one phase: what [`crate::predict_phase`] divides by the roofs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// What the work is, e.g. `prefill 871 tokens × batch 1`.
    pub label: String,
    /// Precision of the arithmetic; selects the compute roof.
    pub precision: Dtype,
    /// FLOPs of the weight matmuls.
    pub matmul_flops: f64,
    /// FLOPs of attention's Q·Kᵀ and P·V.
    pub attention_flops: f64,
    /// `matmul_flops + attention_flops`.
    pub flops: f64,
    /// Memory traffic.
    pub bytes: ByteBreakdown,
    /// Traffic over a link, if the phase uses one.
    pub link: Option<LinkTraffic>,
}

impl Work {
    /// The same work with every FLOP and byte multiplied by `fraction`: the share one machine
    /// does when a step is split between two (weights and tokens split in proportion).
    pub fn scaled(&self, fraction: f64) -> Work {
        let b = &self.bytes;
        Work {
            label: format!("{} × {fraction}", self.label),
            precision: self.precision,
            matmul_flops: self.matmul_flops * fraction,
            attention_flops: self.attention_flops * fraction,
            flops: self.flops * fraction,
            bytes: ByteBreakdown {
                weights: b.weights * fraction,
                kv_read: b.kv_read * fraction,
                kv_written: b.kv_written * fraction,
                activations: b.activations * fraction,
                gradients: b.gradients * fraction,
                optimizer: b.optimizer * fraction,
            },
            link: self.link.as_ref().map(|l| LinkTraffic {
                link: l.link.clone(),
                bytes: l.bytes * fraction,
            }),
        }
    }
}

/// Work counted elsewhere — a kernel whose FLOPs and minimum bytes silirep-core's formulas
/// give (a decode step through some layers, one layer's forward pass) — so the roofs can bound
/// a measured kernel by the same rule as a phase. Its bytes are not broken down by kind and
/// are reported under `weights`: only their total meets the memory roof.
pub fn counted_work(label: &str, precision: Dtype, flops: f64, bytes: f64) -> Work {
    Work {
        label: label.to_string(),
        precision,
        matmul_flops: flops,
        attention_flops: 0.0,
        flops,
        bytes: ByteBreakdown {
            weights: bytes,
            kv_read: 0.0,
            kv_written: 0.0,
            activations: 0.0,
            gradients: 0.0,
            optimizer: 0.0,
        },
        link: None,
    }
}

/// Expected number of distinct experts per layer that `tokens` tokens route to, assuming each
/// token picks `experts_per_token` distinct experts uniformly at random:
/// E·(1 − (1 − k/E)^tokens). A dense model has one expert, always touched. Real routers are
/// not uniform, so this is an estimate of how many expert FFNs a batch must read: 2 of 8 for
/// Mixtral at one token, all 8 (to 0.1%) from 25 tokens on.
pub fn experts_touched(shape: &ModelShape, tokens: f64) -> f64 {
    if !shape.is_moe() {
        return 1.0;
    }
    let e = shape.experts as f64;
    let k = shape.experts_per_token as f64;
    e * (1.0 - (1.0 - k / e).powf(tokens))
}

/// Weights one pass over `tokens` tokens reads, in elements: the shared part of every layer,
/// the experts those tokens touch, the final norm, the output projection when logits are
/// computed, and the embedding rows gathered (at most one per vocabulary entry).
fn weights_read(shape: &ModelShape, tokens: f64, logits: bool) -> f64 {
    let layers = shape.layers as f64;
    let per_layer = shape.shared_weights_per_layer() as f64
        + experts_touched(shape, tokens) * shape.ffn_weights_per_expert() as f64;
    let lm_head = if logits {
        (shape.vocab * shape.hidden) as f64
    } else {
        0.0
    };
    let embedding_rows = tokens.min(shape.vocab as f64) * shape.hidden as f64;
    layers * per_layer + shape.hidden as f64 + lm_head + embedding_rows
}

/// Matmul weights per token without the output projection.
fn matmul_weights_without_lm_head(shape: &ModelShape) -> f64 {
    (shape.parameters().matmul_per_token - shape.vocab * shape.hidden) as f64
}

/// Q·Kᵀ and P·V FLOPs of one layer for query/key pairs `pairs`: each pair is one head_dim-long
/// dot product for the score and one head_dim-long multiply-add into the output, per query
/// head, so 4·heads·head_dim FLOPs per pair.
fn attention_flops_per_layer(shape: &ModelShape, pairs: f64) -> f64 {
    4.0 * (shape.heads * shape.head_dim) as f64 * pairs
}

fn nonzero(value: u64, what: &'static str) -> Result<f64, ModelError> {
    if value == 0 {
        Err(ModelError::Zero { what })
    } else {
        Ok(value as f64)
    }
}

/// Prefill of `prompt_tokens` tokens for each of `batch` sequences: the prompt's keys and
/// values are computed and written to the cache. Output logits are not computed here: every
/// output token, the first included, comes from a decode step (see [`decode_step`]), so that
/// a prompt prefilled on one machine and decoded on another counts the same work as one
/// machine doing both.
///
/// With T = batch·N tokens and W = matmul weights per token without the output projection:
/// - matmul FLOPs = 2·T·W;
/// - attention FLOPs = batch·layers·4·heads·head_dim·N(N+1)/2: causal, query i attends the
///   i positions up to itself, so the exact pair count N(N+1)/2 is used rather than N²/2;
/// - weights = every shared weight, the experts T tokens touch, the final norm and T
///   embedding rows, once;
/// - KV written = T·kv_bytes_per_token; KV read = 0 (a fused kernel consumes keys and values
///   as it produces them: the minimum);
/// - activations = layers·2·T·hidden (each layer reads its input, writes its output).
pub fn prefill(shape: &ModelShape, batch: u64, prompt_tokens: u64) -> Result<Work, ModelError> {
    shape.validate()?;
    let b = nonzero(batch, "prefill batch")?;
    let n = nonzero(prompt_tokens, "prompt tokens")?;
    let tokens = b * n;
    let layers = shape.layers as f64;
    let act = shape.dtypes.compute.size_bytes();
    let matmul_flops = 2.0 * tokens * matmul_weights_without_lm_head(shape);
    let attention_flops = b * layers * attention_flops_per_layer(shape, n * (n + 1.0) / 2.0);
    Ok(Work {
        label: format!(
            "{}: prefill {prompt_tokens} tokens × batch {batch}",
            shape.name
        ),
        precision: shape.dtypes.compute,
        matmul_flops,
        attention_flops,
        flops: matmul_flops + attention_flops,
        bytes: ByteBreakdown {
            weights: weights_read(shape, tokens, false) * shape.dtypes.weight.size_bytes(),
            kv_written: tokens * shape.kv_bytes_per_token(),
            activations: layers * 2.0 * tokens * shape.hidden as f64 * act,
            ..ByteBreakdown::default()
        },
        link: None,
    })
}

/// One decode step for `batch` sequences whose caches hold `context` tokens each: one new
/// token per sequence goes through the whole model, logits included. `context` 0 is defined
/// (a sequence with an empty cache: the token attends only to itself); batch 0 is an error.
///
/// With B = batch, C = context and M = matmul weights per token (output projection included):
/// - matmul FLOPs = 2·B·M;
/// - attention FLOPs = B·layers·4·heads·head_dim·(C+1) (the new token attends C cached
///   positions and itself);
/// - weights = every shared weight, the experts B tokens touch, the final norm, the output
///   projection and B embedding rows, once per step whatever B is: this is why batching
///   raises throughput;
/// - KV read = B·C·kv_bytes_per_token (every sequence reads its own cache);
///   KV written = B·kv_bytes_per_token;
/// - activations = layers·2·B·hidden + B·vocab (logits written).
pub fn decode_step(shape: &ModelShape, batch: u64, context: u64) -> Result<Work, ModelError> {
    shape.validate()?;
    let b = nonzero(batch, "decode batch")?;
    let c = context as f64;
    let layers = shape.layers as f64;
    let act = shape.dtypes.compute.size_bytes();
    let kv = shape.kv_bytes_per_token();
    let matmul_flops = 2.0 * b * shape.parameters().matmul_per_token as f64;
    let attention_flops = b * layers * attention_flops_per_layer(shape, c + 1.0);
    Ok(Work {
        label: format!(
            "{}: decode step at context {context} × batch {batch}",
            shape.name
        ),
        precision: shape.dtypes.compute,
        matmul_flops,
        attention_flops,
        flops: matmul_flops + attention_flops,
        bytes: ByteBreakdown {
            weights: weights_read(shape, b, true) * shape.dtypes.weight.size_bytes(),
            kv_read: b * c * kv,
            kv_written: b * kv,
            activations: (layers * 2.0 * b * shape.hidden as f64 + b * shape.vocab as f64) * act,
            ..ByteBreakdown::default()
        },
        link: None,
    })
}

/// Bytes of the KV cache for `batch` sequences of `tokens` tokens:
/// batch·tokens·2·layers·kv_heads·head_dim·kv element size. Mistral-7B, 871 tokens, f16:
/// 2·32·8·128·2·871 = 114,163,712 bytes.
pub fn kv_cache_bytes(shape: &ModelShape, batch: u64, tokens: u64) -> Result<f64, ModelError> {
    shape.validate()?;
    Ok(batch as f64 * tokens as f64 * shape.kv_bytes_per_token())
}

/// Optimizer state in bytes per parameter, for Adam: mixed precision keeps an f32 master copy
/// of the weights and f32 first and second moments (12 bytes); with f32 weights the weights
/// are their own master copy (8 bytes: the two moments). The ZeRO paper's (Rajbhandari et al.
/// 2020) accounting.
pub fn adam_state_bytes_per_parameter(weight: Dtype) -> f64 {
    if weight == Dtype::F32 { 8.0 } else { 12.0 }
}

/// One training step (forward, backward, Adam update) over `batch` sequences of `seq_len`
/// tokens, every position predicted (logits for all tokens).
///
/// With T = batch·S tokens, M = matmul weights per token (output projection included) and
/// P = all parameters:
/// - forward FLOPs = 2·T·M + batch·layers·4·heads·head_dim·S(S+1)/2 (causal);
/// - backward = 2 × forward (gradients with respect to inputs and to weights), so a step is
///   3 × forward; with activation recomputation the forward runs twice, 4 × forward;
/// - weights read once per pass: 2 passes (3 with recomputation) over every shared weight and
///   the experts T tokens touch;
/// - gradients written once, in the weight type, for the weights read;
/// - Adam (the assumption): mixed precision reads each gradient and the 12 bytes of state
///   (f32 master, m, v), writes the state and the new low-precision weight:
///   P·(2·weight size + 24); with f32 weights it reads weight, m, v and gradient and writes
///   weight, m, v: P·28;
/// - activations: per layer, forward reads input and writes output (2·T·hidden), backward
///   reads the saved input and the output gradient and writes the input gradient (3·T·hidden),
///   recomputation adds a forward's 2·T·hidden; the logits and their gradient add 2·T·vocab.
pub fn training_step(
    shape: &ModelShape,
    batch: u64,
    seq_len: u64,
    recompute_activations: bool,
) -> Result<Work, ModelError> {
    shape.validate()?;
    let b = nonzero(batch, "training batch")?;
    let s = nonzero(seq_len, "training sequence length")?;
    let tokens = b * s;
    let layers = shape.layers as f64;
    let w = shape.dtypes.weight.size_bytes();
    let act = shape.dtypes.compute.size_bytes();
    let forwards = if recompute_activations { 2.0 } else { 1.0 };
    // backward = 2 forwards; recomputation repeats the forward.
    let multiplier = forwards + 2.0;
    let forward_matmul = 2.0 * tokens * shape.parameters().matmul_per_token as f64;
    let forward_attention = b * layers * attention_flops_per_layer(shape, s * (s + 1.0) / 2.0);
    let params = shape.parameters();
    let untouched_experts = shape.experts as f64 - experts_touched(shape, tokens);
    let touched_params =
        params.total as f64 - layers * untouched_experts * shape.ffn_weights_per_expert() as f64;
    let optimizer_per_param = if shape.dtypes.weight == Dtype::F32 {
        28.0
    } else {
        2.0 * w + 24.0
    };
    let activations_per_layer = (2.0 * forwards + 3.0) * tokens * shape.hidden as f64;
    let logits = 2.0 * tokens * shape.vocab as f64;
    Ok(Work {
        label: format!(
            "{}: training step, batch {batch} × {seq_len} tokens{}",
            shape.name,
            if recompute_activations {
                ", activations recomputed"
            } else {
                ""
            }
        ),
        precision: shape.dtypes.compute,
        matmul_flops: multiplier * forward_matmul,
        attention_flops: multiplier * forward_attention,
        flops: multiplier * (forward_matmul + forward_attention),
        bytes: ByteBreakdown {
            weights: (forwards + 1.0) * touched_params * w,
            gradients: touched_params * w,
            optimizer: params.total as f64 * optimizer_per_param,
            activations: (layers * activations_per_layer + logits) * act,
            ..ByteBreakdown::default()
        },
        link: None,
    })
}

/// Which passes a parallel step runs: collectives happen in the forward pass and mirror in
/// the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Passes {
    /// Inference (prefill or decode): forward only.
    Forward,
    /// Training without activation recomputation: forward and backward.
    Training,
    /// Training with recomputation: the forward's collectives run a second time.
    TrainingRecomputed,
}

impl Passes {
    /// Forward-pass equivalents that communicate: 1, 2 or 3.
    pub fn communicating_passes(self) -> u64 {
        match self {
            Passes::Forward => 1,
            Passes::Training => 2,
            Passes::TrainingRecomputed => 3,
        }
    }
}

/// Collective operations of one step, as seen by one rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Communication {
    /// `all_reduce` or `all_to_all`.
    pub collective: String,
    /// Ranks taking part.
    pub degree: u64,
    /// Collectives per step.
    pub count: u64,
    /// Bytes of each collective's input on one rank.
    pub message_bytes: f64,
    /// Bytes one rank sends per collective.
    pub sent_per_collective_bytes: f64,
    /// Bytes one rank sends per step: count × sent_per_collective_bytes.
    pub sent_per_step_bytes: f64,
    /// Sequential link hops per collective (latency terms).
    pub hops_per_collective: u64,
}

fn parallel_degree(degree: u64) -> Result<f64, ModelError> {
    if degree < 2 {
        return Err(ModelError::OutOfRange {
            what: "parallel degree".into(),
            expected: "at least 2",
            found: degree as f64,
        });
    }
    Ok(degree as f64)
}

/// Tensor parallelism in Megatron-LM's layout (Shoeybi et al. 2019; Narayanan et al. 2021):
/// attention heads and FFN columns are split across `degree` ranks, and each layer all-reduces
/// its activations twice in the forward pass (after attention, after the FFN) and twice in
/// the backward pass. Message = tokens·hidden·activation size; a ring all-reduce sends
/// 2·(degree−1)/degree of it per rank in 2·(degree−1) hops. The embedding's and the loss's
/// collectives (one or two per step, against 4·layers) are not counted.
pub fn tensor_parallel_communication(
    shape: &ModelShape,
    tokens: u64,
    degree: u64,
    passes: Passes,
) -> Result<Communication, ModelError> {
    shape.validate()?;
    let t = parallel_degree(degree)?;
    let tokens = nonzero(tokens, "tokens per step")?;
    let count = 2 * shape.layers * passes.communicating_passes();
    let message_bytes = tokens * shape.hidden as f64 * shape.dtypes.compute.size_bytes();
    let sent = 2.0 * (t - 1.0) / t * message_bytes;
    Ok(Communication {
        collective: "all_reduce".into(),
        degree,
        count,
        message_bytes,
        sent_per_collective_bytes: sent,
        sent_per_step_bytes: count as f64 * sent,
        hops_per_collective: 2 * (degree - 1),
    })
}

/// Expert parallelism (GShard, Lepikhin et al. 2020): the experts of each MoE layer are split
/// across `degree` ranks, each rank holding tokens/degree of the tokens. Each MoE layer runs an
/// all-to-all to dispatch every (token, chosen expert) pair's hidden vector to the expert's rank
/// and another to combine the results back, in the forward pass, and both again in the backward
/// pass. With uniform routing a pair stays local with probability 1/degree, so one rank sends
/// (tokens/degree)·k·hidden·activation size·(degree−1)/degree per all-to-all, in one hop.
/// A token whose k experts share a rank is sent k times (no de-duplication).
pub fn expert_parallel_communication(
    shape: &ModelShape,
    tokens: u64,
    degree: u64,
    passes: Passes,
) -> Result<Communication, ModelError> {
    shape.validate()?;
    let e = parallel_degree(degree)?;
    if !shape.is_moe() || degree > shape.experts {
        return Err(ModelError::Unsupported(format!(
            "expert parallelism of degree {degree} needs at least {degree} experts per layer; {} has {}",
            shape.name, shape.experts
        )));
    }
    let tokens = nonzero(tokens, "tokens per step")?;
    let count = 2 * shape.layers * passes.communicating_passes();
    let message_bytes = tokens / e
        * shape.experts_per_token as f64
        * shape.hidden as f64
        * shape.dtypes.compute.size_bytes();
    let sent = message_bytes * (e - 1.0) / e;
    Ok(Communication {
        collective: "all_to_all".into(),
        degree,
        count,
        message_bytes,
        sent_per_collective_bytes: sent,
        sent_per_step_bytes: count as f64 * sent,
        hops_per_collective: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Dtypes;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn kv_cache_of_the_seed_prompt() {
        // 2·32·8·128·2·871 = 114,163,712 bytes = 114.2 MB
        assert_eq!(
            kv_cache_bytes(&ModelShape::mistral_7b(), 1, 871).unwrap(),
            114_163_712.0
        );
        let q8 = ModelShape::mistral_7b().with_dtypes(Dtypes {
            kv: Dtype::Int8,
            ..Dtypes::uniform(Dtype::F16)
        });
        assert_eq!(kv_cache_bytes(&q8, 2, 871).unwrap(), 114_163_712.0);
    }

    #[test]
    fn prefill_mistral_871_by_hand() {
        // W = 32·(41,943,040 + 176,160,768) = 6,979,321,856 matmul weights without lm_head.
        // matmul = 2·871·6,979,321,856 = 12,157,978,673,152
        // attention = 32 layers · 4·32·128 · 871·872/2 = 32·16384·379,756 = 199,101,513,728
        let work = prefill(&ModelShape::mistral_7b(), 1, 871).unwrap();
        assert_eq!(work.matmul_flops, 12_157_978_673_152.0);
        assert_eq!(work.attention_flops, 199_101_513_728.0);
        assert_eq!(work.flops, 12_357_080_186_880.0);
        // weights: 32·(41,943,040 + 8,192 + 176,160,768) + 4096 + 871·4096 rows
        // = 6,979,584,000 + 4,096 + 3,567,616 = 6,983,155,712 elements · 2 bytes
        assert_eq!(work.bytes.weights, 13_966_311_424.0);
        assert_eq!(work.bytes.kv_written, 114_163_712.0);
        assert_eq!(work.bytes.kv_read, 0.0);
        // 32·2·871·4096·2 = 456,654,848
        assert_eq!(work.bytes.activations, 456_654_848.0);
    }

    #[test]
    fn decode_step_mistral_by_hand() {
        // batch 1, context 871: matmul = 2·7,110,393,856 = 14,220,787,712
        // attention = 32·16384·872 = 457,179,136
        let work = decode_step(&ModelShape::mistral_7b(), 1, 871).unwrap();
        assert_eq!(work.matmul_flops, 14_220_787_712.0);
        assert_eq!(work.attention_flops, 457_179_136.0);
        // weights: 6,979,584,000 + 4,096 + 131,072,000 (lm_head) + 4,096 (one row)
        // = 7,110,664,192 elements · 2
        assert_eq!(work.bytes.weights, 14_221_328_384.0);
        assert_eq!(work.bytes.kv_read, 114_163_712.0);
        assert_eq!(work.bytes.kv_written, 131_072.0);
        // (32·2·4096 + 32000)·2 = 588,288
        assert_eq!(work.bytes.activations, 588_288.0);
    }

    #[test]
    fn decode_batch_reads_weights_once_and_every_cache() {
        let one = decode_step(&ModelShape::mistral_7b(), 1, 1000).unwrap();
        let eight = decode_step(&ModelShape::mistral_7b(), 8, 1000).unwrap();
        // weights grow only by 7 embedding rows of 4096 f16 values
        assert_eq!(eight.bytes.weights - one.bytes.weights, 7.0 * 4096.0 * 2.0);
        assert_eq!(eight.bytes.kv_read, 8.0 * one.bytes.kv_read);
        assert_eq!(eight.flops, 8.0 * one.flops);
    }

    #[test]
    fn decode_edge_cases() {
        let shape = ModelShape::mistral_7b();
        assert_eq!(
            decode_step(&shape, 0, 10).unwrap_err().to_string(),
            "decode batch must be at least 1, found 0"
        );
        // context 0: the token attends to itself only, reads no cache
        let empty = decode_step(&shape, 1, 0).unwrap();
        assert_eq!(empty.bytes.kv_read, 0.0);
        assert_eq!(empty.attention_flops, 32.0 * 16384.0);
        assert!(prefill(&shape, 1, 0).is_err());
        assert!(prefill(&shape, 0, 5).is_err());
    }

    #[test]
    fn mixtral_decode_reads_two_experts_at_batch_one() {
        let shape = ModelShape::mixtral_8x7b();
        assert!(close(experts_touched(&shape, 1.0), 2.0));
        // two tokens: 8·(1 − 0.75²) = 3.5
        assert!(close(experts_touched(&shape, 2.0), 3.5));
        assert!(experts_touched(&shape, 25.0) > 7.99);
        assert_eq!(experts_touched(&ModelShape::mistral_7b(), 100.0), 1.0);
        let step = decode_step(&shape, 1, 0).unwrap();
        // 32·(41,943,040 + 32,768 + 8,192 + 2·176,160,768) + 4096 + 131,072,000 + 4096
        // = 32·394,305,536 + 131,080,192 = 12,748,857,344 elements
        assert!(close(step.bytes.weights, 2.0 * 12_748_857_344.0));
    }

    #[test]
    fn training_step_by_hand() {
        // Mistral-7B, batch 1 × 4 tokens, f16, no recomputation.
        // forward matmul = 2·4·7,110,393,856 = 56,883,150,848
        // forward attention = 32·16384·(4·5/2) = 5,242,880
        // step = 3 × forward = 170,665,177,088
        let shape = ModelShape::mistral_7b();
        let work = training_step(&shape, 1, 4, false).unwrap();
        assert_eq!(work.matmul_flops, 3.0 * 56_883_150_848.0);
        assert_eq!(work.attention_flops, 3.0 * 5_242_880.0);
        let p = 7_241_732_096.0;
        assert_eq!(work.bytes.weights, 2.0 * p * 2.0);
        assert_eq!(work.bytes.gradients, p * 2.0);
        // Adam, mixed precision: 2·2 + 24 = 28 bytes per parameter
        assert_eq!(work.bytes.optimizer, 28.0 * p);
        // (32·(2 + 3)·4·4096 + 2·4·32000)·2 = (2,621,440 + 256,000)·2
        assert_eq!(work.bytes.activations, 5_754_880.0);
        let recomputed = training_step(&shape, 1, 4, true).unwrap();
        assert_eq!(recomputed.flops, 4.0 / 3.0 * work.flops);
        assert_eq!(recomputed.bytes.weights, 3.0 * p * 2.0);
        let f32_shape = shape.clone().with_dtypes(Dtypes::uniform(Dtype::F32));
        let f32_work = training_step(&f32_shape, 1, 4, false).unwrap();
        assert_eq!(f32_work.bytes.optimizer, 28.0 * p);
        assert_eq!(adam_state_bytes_per_parameter(Dtype::F32), 8.0);
        assert_eq!(adam_state_bytes_per_parameter(Dtype::Bf16), 12.0);
        assert!(training_step(&shape, 1, 0, false).is_err());
    }

    #[test]
    fn tensor_parallel_volume_by_hand() {
        // Mistral-7B, 4096 tokens, degree 2, training: 32 layers · 4 = 128 all-reduces of
        // 4096·4096·2 = 33,554,432 bytes; a 2-rank ring sends 2·(1/2) = 1 message per rank.
        let comm =
            tensor_parallel_communication(&ModelShape::mistral_7b(), 4096, 2, Passes::Training)
                .unwrap();
        assert_eq!(comm.count, 128);
        assert_eq!(comm.message_bytes, 33_554_432.0);
        assert_eq!(comm.sent_per_collective_bytes, 33_554_432.0);
        assert_eq!(comm.sent_per_step_bytes, 128.0 * 33_554_432.0);
        assert_eq!(comm.hops_per_collective, 2);
        // degree 4: 2·3/4 = 1.5 messages per rank, 6 hops; recomputation adds 64 more
        let four = tensor_parallel_communication(
            &ModelShape::mistral_7b(),
            4096,
            4,
            Passes::TrainingRecomputed,
        )
        .unwrap();
        assert_eq!(four.count, 192);
        assert_eq!(four.sent_per_collective_bytes, 1.5 * 33_554_432.0);
        assert_eq!(four.hops_per_collective, 6);
        assert!(
            tensor_parallel_communication(&ModelShape::mistral_7b(), 4096, 1, Passes::Forward)
                .is_err()
        );
    }

    #[test]
    fn expert_parallel_volume_by_hand() {
        // Mixtral, 4096 tokens, degree 2, forward: 32 layers · 2 = 64 all-to-alls.
        // each rank holds 2048 tokens · 2 experts · 4096 · 2 bytes = 33,554,432 bytes of
        // (token, expert) vectors, half of them remote: 16,777,216 sent per all-to-all.
        let comm =
            expert_parallel_communication(&ModelShape::mixtral_8x7b(), 4096, 2, Passes::Forward)
                .unwrap();
        assert_eq!(comm.count, 64);
        assert_eq!(comm.message_bytes, 33_554_432.0);
        assert_eq!(comm.sent_per_collective_bytes, 16_777_216.0);
        let dense =
            expert_parallel_communication(&ModelShape::mistral_7b(), 4096, 2, Passes::Forward);
        assert!(dense.unwrap_err().to_string().contains("has 1"));
        assert!(
            expert_parallel_communication(&ModelShape::mixtral_8x7b(), 4096, 16, Passes::Forward)
                .is_err()
        );
    }

    #[test]
    fn scaling_work_scales_every_figure() {
        let work = decode_step(&ModelShape::mistral_7b(), 4, 100).unwrap();
        let half = work.scaled(0.5);
        assert_eq!(half.flops, work.flops / 2.0);
        assert_eq!(half.bytes.total(), work.bytes.total() / 2.0);
    }

    #[test]
    fn counted_work_meets_the_roofs_as_its_totals() {
        use crate::roofs::tests::machine;
        let w = counted_work("decode", Dtype::F16, 1e9, 2e9);
        assert_eq!(w.flops, 1e9);
        assert_eq!(w.bytes.total(), 2e9);
        // 1 GFLOP at 10 TFLOP/s is 0.1 ms; 2 GB at 100 GB/s is 20 ms: memory binds.
        let p = crate::predict_phase(&w, &machine("m", 10e12, 100e9)).unwrap();
        assert_eq!(p.bound_by, crate::RoofKind::Memory);
        assert!((p.time_s - 0.02).abs() < 1e-15);
    }
}
