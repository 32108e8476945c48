//! Planning work across two unlike machines joined by a link.
//!
//! Serving: prefill on one machine, send the prompt's KV cache over the link, decode on the
//! other — does it beat either machine alone, from which prompt length, over how fast a link?
//! Training: split each step between the two by tensor or expert parallelism with an uneven
//! fraction — what does each side take, what does the link take, which split balances the
//! two sides, and which of machine A, machine B or the link binds?
//!
//! Assumptions, also in `docs/model.md`: the KV cache is sent after the prefill ends (no
//! layer-by-layer overlap) as one message (latency + bytes ÷ bandwidth); collectives do not
//! overlap with compute (Megatron's tensor-parallel all-reduces and the MoE all-to-alls sit on
//! the critical path); the link is full duplex, both directions at the stated bandwidth.

use crate::error::ModelError;
use crate::predict::{Request, decode_steps_time_s, predict_prefill};
use crate::roofs::{Link, MachineRoofs, Prediction, predict_phase};
use crate::shape::ModelShape;
use crate::work::{Passes, kv_cache_bytes, tensor_parallel_communication, training_step};
use serde::{Deserialize, Serialize};

/// Where the phases of a request run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "placement")]
pub enum Placement {
    /// Prefill and decode on one machine.
    Alone {
        /// The machine.
        machine: String,
    },
    /// Prefill on one machine, KV cache over the link, decode on the other.
    Split {
        /// The machine that prefills.
        prefill_on: String,
        /// The machine that decodes.
        decode_on: String,
    },
}

/// One placement's predicted times for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingOption {
    /// Where it runs.
    pub placement: Placement,
    /// The prefill.
    pub prefill: Prediction,
    /// KV cache bytes sent over the link (0 when alone).
    pub kv_transfer_bytes: f64,
    /// latency + bytes ÷ bandwidth (0 when alone).
    pub kv_transfer_s: f64,
    /// The first decode step, on the decoding machine.
    pub first_decode_step: Prediction,
    /// prefill + transfer + first decode step.
    pub ttft_s: f64,
    /// All `output_tokens` decode steps.
    pub decode_time_s: f64,
    /// batch·output_tokens ÷ decode time.
    pub decode_tokens_per_s: f64,
    /// prefill + transfer + decode time.
    pub end_to_end_s: f64,
}

/// Every placement of a request on two machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisaggregationPlan {
    /// The model's name.
    pub model: String,
    /// The request.
    pub request: Request,
    /// The link between the machines.
    pub link: Link,
    /// A alone, B alone, prefill on A + decode on B, prefill on B + decode on A.
    pub options: Vec<ServingOption>,
    /// The placement with the least end-to-end time (the first listed, on a tie).
    pub fastest_end_to_end: Placement,
    /// The placement with the least time to first token (the first listed, on a tie).
    pub fastest_ttft: Placement,
}

fn serve(
    shape: &ModelShape,
    prefill_machine: &MachineRoofs,
    decode_machine: &MachineRoofs,
    link: Option<&Link>,
    request: Request,
) -> Result<ServingOption, ModelError> {
    if request.output_tokens == 0 {
        return Err(ModelError::Zero {
            what: "output tokens",
        });
    }
    let prefill = predict_prefill(shape, prefill_machine, request.batch, request.prompt_tokens)?;
    let (kv_transfer_bytes, kv_transfer_s, placement) = match link {
        Some(link) => {
            let bytes = kv_cache_bytes(shape, request.batch, request.prompt_tokens)?;
            (
                bytes,
                link.transfer_time_s(bytes),
                Placement::Split {
                    prefill_on: prefill_machine.machine.clone(),
                    decode_on: decode_machine.machine.clone(),
                },
            )
        }
        None => (
            0.0,
            0.0,
            Placement::Alone {
                machine: prefill_machine.machine.clone(),
            },
        ),
    };
    let (decode_time_s, first_decode_step) = decode_steps_time_s(
        shape,
        decode_machine,
        request.batch,
        request.prompt_tokens,
        request.output_tokens,
    )?;
    Ok(ServingOption {
        placement,
        ttft_s: prefill.time_s + kv_transfer_s + first_decode_step.time_s,
        end_to_end_s: prefill.time_s + kv_transfer_s + decode_time_s,
        decode_tokens_per_s: request.batch as f64 * request.output_tokens as f64 / decode_time_s,
        prefill,
        kv_transfer_bytes,
        kv_transfer_s,
        first_decode_step,
        decode_time_s,
    })
}

fn argmin_placement(options: &[ServingOption], key: impl Fn(&ServingOption) -> f64) -> Placement {
    let mut best = &options[0];
    for option in &options[1..] {
        if key(option) < key(best) {
            best = option;
        }
    }
    best.placement.clone()
}

/// Predicts a request four ways: on A alone, on B alone, prefill on A with decode on B, and
/// prefill on B with decode on A.
pub fn plan_disaggregation(
    shape: &ModelShape,
    machine_a: &MachineRoofs,
    machine_b: &MachineRoofs,
    link: &Link,
    request: Request,
) -> Result<DisaggregationPlan, ModelError> {
    link.validate()?;
    let options = vec![
        serve(shape, machine_a, machine_a, None, request)?,
        serve(shape, machine_b, machine_b, None, request)?,
        serve(shape, machine_a, machine_b, Some(link), request)?,
        serve(shape, machine_b, machine_a, Some(link), request)?,
    ];
    Ok(DisaggregationPlan {
        model: shape.name.clone(),
        request,
        link: link.clone(),
        fastest_end_to_end: argmin_placement(&options, |o| o.end_to_end_s),
        fastest_ttft: argmin_placement(&options, |o| o.ttft_s),
        options,
    })
}

/// End-to-end times of the split and of the faster machine alone, for one prompt length.
fn split_and_best_alone(
    shape: &ModelShape,
    prefill_machine: &MachineRoofs,
    decode_machine: &MachineRoofs,
    link: &Link,
    request: Request,
) -> Result<(ServingOption, f64), ModelError> {
    let split = serve(shape, prefill_machine, decode_machine, Some(link), request)?;
    let alone_prefiller = serve(shape, prefill_machine, prefill_machine, None, request)?;
    let alone_decoder = serve(shape, decode_machine, decode_machine, None, request)?;
    Ok((
        split,
        alone_prefiller.end_to_end_s.min(alone_decoder.end_to_end_s),
    ))
}

/// From which prompt length splitting pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PromptBreakEven {
    /// The split is at least as fast as either machine alone from a 1-token prompt.
    FromOneToken,
    /// The split is at least as fast from `prompt_tokens` on, and slower at one token fewer.
    From {
        /// The break-even prompt length.
        prompt_tokens: u64,
    },
    /// The split is slower than the faster machine alone at `max_prompt_tokens`.
    NotWithin {
        /// The longest prompt tried.
        max_prompt_tokens: u64,
    },
}

/// The shortest prompt for which prefill on `prefill_machine`, KV transfer and decode on
/// `decode_machine` take no longer end to end than the faster machine alone, searched by
/// bisection over whole tokens in [1, `max_prompt_tokens`].
///
/// Bisection assumes the split's advantage grows with prompt length — true when the prefill
/// machine is the faster prefiller, since the prefill saving grows as N (and N² for
/// attention) while the KV transfer grows as N. Where it does not hold, the answer is still a
/// length at which the split pays with one token fewer at which it does not, but perhaps
/// not the shortest.
pub fn break_even_prompt_tokens(
    shape: &ModelShape,
    prefill_machine: &MachineRoofs,
    decode_machine: &MachineRoofs,
    link: &Link,
    batch: u64,
    output_tokens: u64,
    max_prompt_tokens: u64,
) -> Result<PromptBreakEven, ModelError> {
    link.validate()?;
    if max_prompt_tokens == 0 {
        return Err(ModelError::Zero {
            what: "max prompt tokens",
        });
    }
    let pays = |prompt_tokens: u64| -> Result<bool, ModelError> {
        let request = Request {
            batch,
            prompt_tokens,
            output_tokens,
        };
        let (split, best_alone) =
            split_and_best_alone(shape, prefill_machine, decode_machine, link, request)?;
        Ok(split.end_to_end_s <= best_alone)
    };
    if pays(1)? {
        return Ok(PromptBreakEven::FromOneToken);
    }
    if !pays(max_prompt_tokens)? {
        return Ok(PromptBreakEven::NotWithin { max_prompt_tokens });
    }
    let (mut fails, mut succeeds) = (1u64, max_prompt_tokens);
    while succeeds - fails > 1 {
        let mid = fails + (succeeds - fails) / 2;
        if pays(mid)? {
            succeeds = mid;
        } else {
            fails = mid;
        }
    }
    Ok(PromptBreakEven::From {
        prompt_tokens: succeeds,
    })
}

/// How fast the link must be for the split to pay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum BandwidthBreakEven {
    /// The split pays on a link faster than `bandwidth_bytes_per_s`, ties with the faster
    /// machine alone at it.
    Above {
        /// The break-even bandwidth.
        bandwidth_bytes_per_s: f64,
        /// Seconds the split saves before the KV transfer is counted.
        slack_s: f64,
        /// The KV bytes to send.
        kv_transfer_bytes: f64,
    },
    /// Even an infinitely fast link (latency still counted) leaves the split slower.
    Never {
        /// How much slower: split with zero transfer time minus the faster machine alone.
        shortfall_s: f64,
    },
}

/// The link bandwidth at which the split ties with the faster machine alone, in closed form:
/// with slack = best alone − (prefill + latency + decode), the split pays iff
/// KV bytes ÷ bandwidth < slack, so the break-even bandwidth is KV bytes ÷ slack; with
/// slack ≤ 0 no bandwidth suffices. The link's own bandwidth is not used, its latency is.
pub fn break_even_link_bandwidth(
    shape: &ModelShape,
    prefill_machine: &MachineRoofs,
    decode_machine: &MachineRoofs,
    link: &Link,
    request: Request,
) -> Result<BandwidthBreakEven, ModelError> {
    link.validate()?;
    let (split, best_alone) =
        split_and_best_alone(shape, prefill_machine, decode_machine, link, request)?;
    let without_transfer = split.prefill.time_s + link.latency_s + split.decode_time_s;
    let slack_s = best_alone - without_transfer;
    if slack_s <= 0.0 {
        return Ok(BandwidthBreakEven::Never {
            shortfall_s: -slack_s,
        });
    }
    Ok(BandwidthBreakEven::Above {
        bandwidth_bytes_per_s: split.kv_transfer_bytes / slack_s,
        slack_s,
        kv_transfer_bytes: split.kv_transfer_bytes,
    })
}

/// How a training step is split between two machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParallelStrategy {
    /// Megatron tensor parallelism: heads and FFN columns split; two activation all-reduces
    /// per layer per pass.
    Tensor,
    /// Expert parallelism: experts and tokens split; dispatch and combine all-to-alls per MoE
    /// layer per pass, and one all-reduce of the (replicated) non-expert weights' gradients.
    Expert,
}

/// A training job: `batch` sequences of `seq_len` tokens per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingJob {
    /// Sequences per step.
    pub batch: u64,
    /// Tokens per sequence.
    pub seq_len: u64,
    /// Whether activations are recomputed in the backward pass.
    pub recompute_activations: bool,
}

/// What bounds a split step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBound {
    /// Machine A's share of the compute takes longest.
    MachineA,
    /// Machine B's share takes longest.
    MachineB,
    /// The link time exceeds either side's compute.
    Link,
}

/// A training step split between two machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSplit {
    /// Tensor or expert parallelism.
    pub strategy: ParallelStrategy,
    /// The job.
    pub job: TrainingJob,
    /// Machine A's name.
    pub machine_a: String,
    /// Machine B's name.
    pub machine_b: String,
    /// Share of the step's work on A (B does the rest).
    pub fraction_a: f64,
    /// The share that gives both sides equal compute time: t_B ÷ (t_A + t_B), with t_X the
    /// time X alone takes for the whole step.
    pub balanced_fraction_a: f64,
    /// A's share.
    pub compute_a: Prediction,
    /// B's share.
    pub compute_b: Prediction,
    /// Collectives per step over the link (all-reduces or all-to-alls).
    pub collectives: u64,
    /// Bytes each side sends per step in those collectives.
    pub collective_bytes_each_way: f64,
    /// Their time: collectives·hops·latency + bytes ÷ bandwidth.
    pub collective_time_s: f64,
    /// Bytes each side sends to all-reduce the gradients of replicated weights (expert
    /// parallelism's non-expert weights; 0 for tensor parallelism, which replicates none).
    pub gradient_all_reduce_bytes_each_way: f64,
    /// Its time: 2·latency + bytes ÷ bandwidth (a two-rank ring).
    pub gradient_all_reduce_s: f64,
    /// collective time + gradient all-reduce time.
    pub link_time_s: f64,
    /// max(A's compute, B's compute) + link time: nothing overlaps.
    pub step_time_s: f64,
    /// The largest of A's compute, B's compute and the link time.
    pub bound_by: SplitBound,
    /// The whole step on A alone.
    pub alone_a_s: f64,
    /// The whole step on B alone.
    pub alone_b_s: f64,
    /// The faster machine alone ÷ the split step (above 1: the split pays).
    pub speedup_over_faster_alone: f64,
}

/// Splits one training step between machines A and B: A takes `fraction_a` of the work
/// (every FLOP and byte scaled; replicated pieces such as norms and, for expert parallelism,
/// the non-expert weights are not counted twice), or the balanced fraction when `None`.
///
/// Link traffic per step, with T = batch·seq_len tokens, passes p = 2 (3 with
/// recomputation) and activations of size a:
/// - tensor: 2·layers·p all-reduces of T·hidden·a bytes; a two-rank ring sends the whole
///   message each way in 2 hops, whatever the split;
/// - expert: 2·layers·p all-to-alls; A's T·f tokens send k copies to B's experts with
///   probability 1−f (uniform routing), so each side sends T·k·f·(1−f)·hidden·a bytes in one
///   hop; plus one all-reduce of the non-expert weights' gradients (P_dense·weight size each
///   way, 2 hops).
pub fn plan_training_split(
    shape: &ModelShape,
    strategy: ParallelStrategy,
    machine_a: &MachineRoofs,
    machine_b: &MachineRoofs,
    link: &Link,
    job: TrainingJob,
    fraction_a: Option<f64>,
) -> Result<TrainingSplit, ModelError> {
    link.validate()?;
    if let Some(f) = fraction_a
        && !(f > 0.0 && f < 1.0)
    {
        return Err(ModelError::OutOfRange {
            what: "fraction_a".into(),
            expected: "strictly between 0 and 1 (use the single-machine prediction for 0 or 1)",
            found: f,
        });
    }
    if strategy == ParallelStrategy::Expert && !shape.is_moe() {
        return Err(ModelError::Unsupported(format!(
            "expert parallelism needs a mixture of experts; {} has one FFN per layer",
            shape.name
        )));
    }
    let work = training_step(shape, job.batch, job.seq_len, job.recompute_activations)?;
    let alone_a_s = predict_phase(&work, machine_a)?.time_s;
    let alone_b_s = predict_phase(&work, machine_b)?.time_s;
    let balanced_fraction_a = alone_b_s / (alone_a_s + alone_b_s);
    let f = fraction_a.unwrap_or(balanced_fraction_a);
    let compute_a = predict_phase(&work.scaled(f), machine_a)?;
    let compute_b = predict_phase(&work.scaled(1.0 - f), machine_b)?;

    let passes = if job.recompute_activations {
        Passes::TrainingRecomputed
    } else {
        Passes::Training
    };
    let tokens_per_step =
        job.batch
            .checked_mul(job.seq_len)
            .ok_or_else(|| ModelError::OutOfRange {
                what: "training batch × sequence length".into(),
                expected: "at most 2^64 − 1 tokens per step",
                found: job.batch as f64 * job.seq_len as f64,
            })?;
    let tokens = tokens_per_step as f64;
    let bandwidth = link.bandwidth_bytes_per_s;
    let (collectives, sent_per_collective, hops, gradient_bytes) = match strategy {
        ParallelStrategy::Tensor => {
            let comm = tensor_parallel_communication(shape, tokens_per_step, 2, passes)?;
            (
                comm.count,
                comm.sent_per_collective_bytes,
                comm.hops_per_collective,
                0.0,
            )
        }
        ParallelStrategy::Expert => {
            let count = 2 * shape.layers * passes.communicating_passes();
            let sent = tokens
                * shape.experts_per_token as f64
                * f
                * (1.0 - f)
                * shape.hidden as f64
                * shape.dtypes.compute.size_bytes();
            let params = shape.parameters();
            let dense =
                params.total - shape.layers * shape.experts * shape.ffn_weights_per_expert();
            (
                count,
                sent,
                1,
                dense as f64 * shape.dtypes.weight.size_bytes(),
            )
        }
    };
    let collective_bytes_each_way = collectives as f64 * sent_per_collective;
    let collective_time_s =
        (collectives * hops) as f64 * link.latency_s + collective_bytes_each_way / bandwidth;
    let gradient_all_reduce_s = if gradient_bytes > 0.0 {
        2.0 * link.latency_s + gradient_bytes / bandwidth
    } else {
        0.0
    };
    let link_time_s = collective_time_s + gradient_all_reduce_s;
    let step_time_s = compute_a.time_s.max(compute_b.time_s) + link_time_s;
    let bound_by = if link_time_s > compute_a.time_s.max(compute_b.time_s) {
        SplitBound::Link
    } else if compute_b.time_s > compute_a.time_s {
        SplitBound::MachineB
    } else {
        SplitBound::MachineA
    };
    Ok(TrainingSplit {
        strategy,
        job,
        machine_a: machine_a.machine.clone(),
        machine_b: machine_b.machine.clone(),
        fraction_a: f,
        balanced_fraction_a,
        compute_a,
        compute_b,
        collectives,
        collective_bytes_each_way,
        collective_time_s,
        gradient_all_reduce_bytes_each_way: gradient_bytes,
        gradient_all_reduce_s,
        link_time_s,
        step_time_s,
        bound_by,
        alone_a_s,
        alone_b_s,
        speedup_over_faster_alone: alone_a_s.min(alone_b_s) / step_time_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roofs::RoofSource;
    use crate::roofs::tests::machine;
    use crate::work::{decode_step, expert_parallel_communication, prefill};

    fn link(bandwidth_bytes_per_s: f64, latency_s: f64) -> Link {
        Link {
            name: "thunderbolt".into(),
            bandwidth_bytes_per_s,
            latency_s,
            source: RoofSource::Measured {
                what: "test".into(),
            },
        }
    }

    /// A fast prefiller (high compute, low bandwidth) and a fast decoder (the reverse); test
    /// numbers, not any real machine's.
    fn prefiller() -> MachineRoofs {
        machine("prefiller", 40e12, 100e9)
    }
    fn decoder() -> MachineRoofs {
        machine("decoder", 10e12, 400e9)
    }

    const SEED: Request = Request {
        batch: 1,
        prompt_tokens: 871,
        output_tokens: 256,
    };

    #[test]
    fn split_adds_the_kv_transfer_between_the_phases() {
        let shape = ModelShape::mistral_7b();
        let tb = link(4.7e9, 0.0);
        let plan = plan_disaggregation(&shape, &prefiller(), &decoder(), &tb, SEED).unwrap();
        let [a, b, ab, ba] = &plan.options[..] else {
            panic!("four options expected");
        };
        // 114,163,712 bytes over 4.7e9 bytes/s = 0.0242901515 s
        assert_eq!(ab.kv_transfer_bytes, 114_163_712.0);
        assert!((ab.kv_transfer_s - 114_163_712.0 / 4.7e9).abs() < 1e-15);
        assert_eq!(a.kv_transfer_s, 0.0);
        // The split's prefill is A's, its decode is B's.
        assert_eq!(ab.prefill, a.prefill);
        assert_eq!(ab.decode_time_s, b.decode_time_s);
        assert_eq!(ba.prefill, b.prefill);
        assert!(
            (ab.end_to_end_s - (a.prefill.time_s + ab.kv_transfer_s + b.decode_time_s)).abs()
                < 1e-12
        );
        assert!(
            (ab.ttft_s - (a.prefill.time_s + ab.kv_transfer_s + b.first_decode_step.time_s)).abs()
                < 1e-12
        );
        // Prefill by hand on the prefiller: 12,357,080,186,880 FLOPs / 40e12 = 0.308927 s;
        // decode steps are memory-bound on the decoder, ~14.34 GB / 400 GB/s = 35.8 ms each,
        // on the prefiller 143 ms: the split wins end to end.
        assert!((a.prefill.time_s - 0.308_927_004_672).abs() < 1e-12);
        assert_eq!(
            plan.fastest_end_to_end,
            Placement::Split {
                prefill_on: "prefiller".into(),
                decode_on: "decoder".into()
            }
        );
    }

    #[test]
    fn break_even_bandwidth_is_where_the_split_ties() {
        let shape = ModelShape::mistral_7b();
        let tb = link(4.7e9, 1e-4);
        let result =
            break_even_link_bandwidth(&shape, &prefiller(), &decoder(), &tb, SEED).unwrap();
        let BandwidthBreakEven::Above {
            bandwidth_bytes_per_s,
            ..
        } = result
        else {
            panic!("the split should pay on some link: {result:?}");
        };
        // At the break-even bandwidth the split ties with the decoder alone (the faster one).
        let at = link(bandwidth_bytes_per_s, 1e-4);
        let plan = plan_disaggregation(&shape, &prefiller(), &decoder(), &at, SEED).unwrap();
        let (alone, split) = (&plan.options[1], &plan.options[2]);
        assert!((split.end_to_end_s - alone.end_to_end_s).abs() < 1e-12);
        // By hand: slack = decoder prefill − prefiller prefill − latency
        // = 12,357,080,186,880·(1/10e12 − 1/40e12) − 1e-4 = 0.926781014016 − 0.0001
        let slack = 12_357_080_186_880.0 * (1.0 / 10e12 - 1.0 / 40e12) - 1e-4;
        assert!((bandwidth_bytes_per_s - 114_163_712.0 / slack).abs() < 1e-3);
    }

    #[test]
    fn split_never_pays_when_the_prefiller_is_no_faster() {
        // Same machine twice: the split only adds the transfer.
        let shape = ModelShape::mistral_7b();
        let same = decoder();
        let tb = link(4.7e9, 1e-4);
        let result = break_even_link_bandwidth(&shape, &same, &same, &tb, SEED).unwrap();
        // shortfall = the latency alone (prefill and decode identical)
        let BandwidthBreakEven::Never { shortfall_s } = result else {
            panic!("the split cannot pay: {result:?}");
        };
        assert!((shortfall_s - 1e-4).abs() < 1e-12);
        assert_eq!(
            break_even_prompt_tokens(&shape, &same, &same, &tb, 1, 256, 100_000).unwrap(),
            PromptBreakEven::NotWithin {
                max_prompt_tokens: 100_000
            }
        );
    }

    #[test]
    fn break_even_prompt_by_hand() {
        // a prefills 4× faster (40 vs 10 TFLOP/s), b decodes 4× faster (400 vs 100 GB/s).
        // With 1024 output tokens the decoder alone beats a alone, and the split differs from
        // b alone only by prefill (a's instead of b's) and the transfer, so it pays when
        //   F(N)·(1/10e12 − 1/40e12) ≥ 131,072·N / 1e8      (a slow 100 MB/s link)
        // with prefill FLOPs F(N) = 2·W·N + 32·16384·N(N+1)/2, W = 6,979,321,856:
        //   7.5e-14·(13,958,643,712 + 262,144·(N+1)) ≥ 1.31072e-3
        //   262,144·(N+1) ≥ 17,476,266,666.7 − 13,958,643,712 = 3,517,622,954.7
        //   N + 1 ≥ 13,418.67, so N = 13,418: matmuls alone never pay on this link, the
        //   quadratic attention saving does.
        let shape = ModelShape::mistral_7b();
        let a = machine("a", 40e12, 100e9);
        let b = machine("b", 10e12, 400e9);
        let slow = link(1e8, 0.0);
        let result = break_even_prompt_tokens(&shape, &a, &b, &slow, 1, 1024, 20_000).unwrap();
        assert_eq!(
            result,
            PromptBreakEven::From {
                prompt_tokens: 13_418
            }
        );
        // On a near-infinite link the split pays once a's prefill is faster than b's. Short
        // prefills are memory-bound on a (weights, KV and activations B(N) at 100 GB/s) and
        // compute-bound on b (F(N) at 10 TFLOP/s):
        //   N = 100: B = 14,025,531,392 → 0.14025531392 s on a; F = 1,398,512,025,600 →
        //            0.13985120256 s on b: b is faster, no pay;
        //   N = 101: B = 14,026,194,944 → 0.14026194944 s; F = 1,412,523,622,400 →
        //            0.14125236224 s: a is faster, the split pays.
        let fast = link(1e15, 0.0);
        assert_eq!(
            break_even_prompt_tokens(&shape, &a, &b, &fast, 1, 1024, 1000).unwrap(),
            PromptBreakEven::From { prompt_tokens: 101 }
        );
        // (No machine pair pays from a 1-token prompt in this model: a 1-token prefill costs
        // about what a decode step costs, so the machine that prefills it faster decodes faster too.)
        assert!(break_even_prompt_tokens(&shape, &a, &b, &fast, 1, 1024, 0).is_err());
    }

    #[test]
    fn tensor_split_balances_compute() {
        // A is 3× B in every roof: balanced fraction 3/4, both sides take 1/4 of A... :
        // t_A = t, t_B = 3t; f = 3t/(t + 3t) = 0.75; A's share 0.75·t, B's 0.25·3t.
        let shape = ModelShape::mistral_7b();
        let a = machine("a", 30e12, 300e9);
        let b = machine("b", 10e12, 100e9);
        let job = TrainingJob {
            batch: 1,
            seq_len: 2048,
            recompute_activations: false,
        };
        let tb = link(4.7e9, 5e-6);
        let split =
            plan_training_split(&shape, ParallelStrategy::Tensor, &a, &b, &tb, job, None).unwrap();
        assert!((split.balanced_fraction_a - 0.75).abs() < 1e-12);
        assert!((split.compute_a.time_s - split.compute_b.time_s).abs() < 1e-9);
        // 128 all-reduces of 2048·4096·2 = 16,777,216 bytes, 2 hops each:
        // 128·2·5e-6 + 128·16,777,216 / 4.7e9 = 0.00128 + 0.456914... s
        assert_eq!(split.collectives, 128);
        assert_eq!(split.collective_bytes_each_way, 128.0 * 16_777_216.0);
        let expected = 0.00128 + 128.0 * 16_777_216.0 / 4.7e9;
        assert!((split.collective_time_s - expected).abs() < 1e-12);
        assert_eq!(split.gradient_all_reduce_s, 0.0);
        // Balanced: A and B take the same time (to rounding), more than the link.
        assert!(matches!(
            split.bound_by,
            SplitBound::MachineA | SplitBound::MachineB
        ));
        assert!(split.link_time_s < split.compute_a.time_s);
        assert!((split.step_time_s - (split.compute_a.time_s + split.link_time_s)).abs() < 1e-12);
        // On a 100× slower link the link binds.
        let slow = link(4.7e7, 5e-6);
        let split = plan_training_split(
            &shape,
            ParallelStrategy::Tensor,
            &a,
            &b,
            &slow,
            job,
            Some(0.5),
        )
        .unwrap();
        assert_eq!(split.bound_by, SplitBound::Link);
        assert!(split.speedup_over_faster_alone < 1.0);
        assert_eq!(split.fraction_a, 0.5);
        // B's half is slower than A's at f = 0.5 when the link is fast.
        let split = plan_training_split(
            &shape,
            ParallelStrategy::Tensor,
            &a,
            &b,
            &link(1e15, 0.0),
            job,
            Some(0.5),
        )
        .unwrap();
        assert_eq!(split.bound_by, SplitBound::MachineB);
    }

    #[test]
    fn expert_split_traffic_by_hand() {
        let shape = ModelShape::mixtral_8x7b();
        let a = machine("a", 30e12, 300e9);
        let b = machine("b", 10e12, 100e9);
        let job = TrainingJob {
            batch: 1,
            seq_len: 4096,
            recompute_activations: false,
        };
        let tb = link(4.7e9, 0.0);
        let split = plan_training_split(
            &shape,
            ParallelStrategy::Expert,
            &a,
            &b,
            &tb,
            job,
            Some(0.5),
        )
        .unwrap();
        // f = 1/2: 4096·2·(1/4)·4096·2 = 16,777,216 bytes each way per all-to-all, the same
        // as the even expert-parallel volume of degree 2.
        let even = expert_parallel_communication(&shape, 4096, 2, Passes::Training).unwrap();
        assert_eq!(split.collectives, even.count);
        assert_eq!(split.collective_bytes_each_way, even.sent_per_step_bytes);
        assert_eq!(even.sent_per_collective_bytes, 16_777_216.0);
        // Non-expert weights: 46,702,792,704 − 32·8·176,160,768 = 1,605,636,096 params, f16.
        assert_eq!(
            split.gradient_all_reduce_bytes_each_way,
            2.0 * 1_605_636_096.0
        );
        // f = 0.75 sends 0.75·0.25 / 0.25 = 3/4 of that.
        let uneven = plan_training_split(
            &shape,
            ParallelStrategy::Expert,
            &a,
            &b,
            &tb,
            job,
            Some(0.75),
        )
        .unwrap();
        assert!(
            (uneven.collective_bytes_each_way - 0.75 * split.collective_bytes_each_way).abs()
                < 1e-3
        );
        let dense = plan_training_split(
            &ModelShape::mistral_7b(),
            ParallelStrategy::Expert,
            &a,
            &b,
            &tb,
            job,
            None,
        );
        assert!(
            dense
                .unwrap_err()
                .to_string()
                .contains("mixture of experts")
        );
        for bad in [0.0, 1.0, f64::NAN] {
            assert!(
                plan_training_split(
                    &shape,
                    ParallelStrategy::Expert,
                    &a,
                    &b,
                    &tb,
                    job,
                    Some(bad)
                )
                .is_err()
            );
        }
    }

    #[test]
    fn zero_bandwidth_link_is_an_error() {
        let zero = link(0.0, 0.0);
        let err = plan_disaggregation(
            &ModelShape::mistral_7b(),
            &prefiller(),
            &decoder(),
            &zero,
            SEED,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bandwidth_bytes_per_s"));
    }

    #[test]
    fn phases_used_by_the_planner_are_the_work_functions() {
        // Guards against the planner restating a formula: its transfer is the prefill's KV.
        let shape = ModelShape::mistral_7b();
        let work = prefill(&shape, 2, 100).unwrap();
        let plan = plan_disaggregation(
            &shape,
            &prefiller(),
            &decoder(),
            &link(1e9, 0.0),
            Request {
                batch: 2,
                prompt_tokens: 100,
                output_tokens: 1,
            },
        )
        .unwrap();
        assert_eq!(plan.options[2].kv_transfer_bytes, work.bytes.kv_written);
        let step = predict_phase(&decode_step(&shape, 2, 100).unwrap(), &decoder()).unwrap();
        assert_eq!(plan.options[2].decode_time_s, step.time_s);
    }
}
