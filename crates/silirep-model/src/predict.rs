//! Predictions for one machine: prefill time, time to first token, decode throughput by
//! batch, a whole generation, a training step, and what fits in memory.
//!
//! Every time here is [`crate::predict_phase`] applied to a phase's [`crate::Work`], so every
//! figure carries the roof that bounds it. Conventions (also in `docs/model.md`): prefill
//! writes the prompt's KV cache; each output token is made by one decode step; so time to
//! first token = prefill + the first decode step (at context = prompt length), and a
//! generation of M tokens is prefill + M decode steps at contexts N, N+1, …, N+M−1.

use crate::error::ModelError;
use crate::roofs::{MachineRoofs, Prediction, predict_phase};
use crate::shape::ModelShape;
use crate::work::{adam_state_bytes_per_parameter, decode_step, prefill, training_step};
use serde::{Deserialize, Serialize};

/// A serving request: `batch` sequences, each a prompt of `prompt_tokens` followed by
/// `output_tokens` generated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Sequences served together.
    pub batch: u64,
    /// Prompt length of each sequence.
    pub prompt_tokens: u64,
    /// Tokens generated for each sequence.
    pub output_tokens: u64,
}

/// Prefill time on one machine.
pub fn predict_prefill(
    shape: &ModelShape,
    machine: &MachineRoofs,
    batch: u64,
    prompt_tokens: u64,
) -> Result<Prediction, ModelError> {
    predict_phase(&prefill(shape, batch, prompt_tokens)?, machine)
}

/// Time to first token on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ttft {
    /// The prompt's prefill.
    pub prefill: Prediction,
    /// The decode step that makes the first token, at context = prompt length.
    pub first_decode_step: Prediction,
    /// prefill + first decode step.
    pub ttft_s: f64,
}

/// Time to first token: prefill + one decode step at context = prompt length.
pub fn predict_ttft(
    shape: &ModelShape,
    machine: &MachineRoofs,
    batch: u64,
    prompt_tokens: u64,
) -> Result<Ttft, ModelError> {
    let prefill = predict_prefill(shape, machine, batch, prompt_tokens)?;
    let first_decode_step = predict_phase(&decode_step(shape, batch, prompt_tokens)?, machine)?;
    Ok(Ttft {
        ttft_s: prefill.time_s + first_decode_step.time_s,
        prefill,
        first_decode_step,
    })
}

/// Decode throughput at one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeRate {
    /// Sequences decoded together.
    pub batch: u64,
    /// Tokens already in each sequence's cache.
    pub context: u64,
    /// One step's prediction.
    pub step: Prediction,
    /// batch ÷ step time: tokens/s summed over the batch.
    pub tokens_per_s: f64,
    /// 1 ÷ step time: tokens/s each sequence sees.
    pub tokens_per_s_per_sequence: f64,
}

/// Decode throughput for each batch size in `batches` at a fixed context; a batch of 0 is an
/// error. Throughput rises with batch while the step is memory-bound (the weights are read
/// once per step whatever the batch) and flattens once compute binds.
pub fn predict_decode_rates(
    shape: &ModelShape,
    machine: &MachineRoofs,
    context: u64,
    batches: &[u64],
) -> Result<Vec<DecodeRate>, ModelError> {
    batches
        .iter()
        .map(|&batch| {
            let step = predict_phase(&decode_step(shape, batch, context)?, machine)?;
            Ok(DecodeRate {
                batch,
                context,
                tokens_per_s: batch as f64 / step.time_s,
                tokens_per_s_per_sequence: 1.0 / step.time_s,
                step,
            })
        })
        .collect()
}

/// Sum of the predicted times of decode steps at contexts `first_context`,
/// `first_context + 1`, …, for `steps` steps. Returned with the first step's prediction.
pub(crate) fn decode_steps_time_s(
    shape: &ModelShape,
    machine: &MachineRoofs,
    batch: u64,
    first_context: u64,
    steps: u64,
) -> Result<(f64, Prediction), ModelError> {
    let first = predict_phase(&decode_step(shape, batch, first_context)?, machine)?;
    let mut total = first.time_s;
    for i in 1..steps {
        total += predict_phase(&decode_step(shape, batch, first_context + i)?, machine)?.time_s;
    }
    Ok((total, first))
}

/// A whole generation on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationPrediction {
    /// The machine.
    pub machine: String,
    /// The request.
    pub request: Request,
    /// Time to first token.
    pub ttft: Ttft,
    /// All `output_tokens` decode steps.
    pub decode_time_s: f64,
    /// batch·output_tokens ÷ decode time.
    pub decode_tokens_per_s: f64,
    /// prefill + decode time.
    pub end_to_end_s: f64,
}

/// Prefill, then `output_tokens` decode steps, on one machine. Output tokens 0 is an error
/// (there would be no first token).
pub fn predict_generation(
    shape: &ModelShape,
    machine: &MachineRoofs,
    request: Request,
) -> Result<GenerationPrediction, ModelError> {
    if request.output_tokens == 0 {
        return Err(ModelError::Zero {
            what: "output tokens",
        });
    }
    let prefill = predict_prefill(shape, machine, request.batch, request.prompt_tokens)?;
    let (decode_time_s, first_decode_step) = decode_steps_time_s(
        shape,
        machine,
        request.batch,
        request.prompt_tokens,
        request.output_tokens,
    )?;
    Ok(GenerationPrediction {
        machine: machine.machine.clone(),
        request,
        end_to_end_s: prefill.time_s + decode_time_s,
        decode_tokens_per_s: request.batch as f64 * request.output_tokens as f64 / decode_time_s,
        ttft: Ttft {
            ttft_s: prefill.time_s + first_decode_step.time_s,
            prefill,
            first_decode_step,
        },
        decode_time_s,
    })
}

/// One training step's time on one machine (see [`crate::training_step`] for the work).
pub fn predict_training_step(
    shape: &ModelShape,
    machine: &MachineRoofs,
    batch: u64,
    seq_len: u64,
    recompute_activations: bool,
) -> Result<Prediction, ModelError> {
    predict_phase(
        &training_step(shape, batch, seq_len, recompute_activations)?,
        machine,
    )
}

/// What must be resident in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUse {
    /// Sequences whose KV cache is held.
    pub batch: u64,
    /// Tokens of KV cache per sequence (0 for none).
    pub context_tokens: u64,
    /// Whether gradients and Adam state are held too (training).
    pub training: bool,
}

/// Resident bytes of a model under a [`MemoryUse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryFootprint {
    /// All parameters at the weight element size.
    pub weights: f64,
    /// batch·context·kv_bytes_per_token.
    pub kv_cache: f64,
    /// One gradient per parameter at the weight element size (training only).
    pub gradients: f64,
    /// Adam state: 12 bytes per parameter, 8 with f32 weights (training only).
    pub optimizer_state: f64,
    /// Sum of the above. Activations, workspace and the runtime are not counted: the total is
    /// the least memory the model needs.
    pub total: f64,
}

/// Resident bytes of `shape` under `usage`.
pub fn memory_footprint(
    shape: &ModelShape,
    usage: MemoryUse,
) -> Result<MemoryFootprint, ModelError> {
    shape.validate()?;
    let params = shape.parameters().total as f64;
    let weights = params * shape.dtypes.weight.size_bytes();
    let kv_cache = usage.batch as f64 * usage.context_tokens as f64 * shape.kv_bytes_per_token();
    let (gradients, optimizer_state) = if usage.training {
        (
            weights,
            params * adam_state_bytes_per_parameter(shape.dtypes.weight),
        )
    } else {
        (0.0, 0.0)
    };
    Ok(MemoryFootprint {
        weights,
        kv_cache,
        gradients,
        optimizer_state,
        total: weights + kv_cache + gradients + optimizer_state,
    })
}

/// The model chosen by [`largest_fitting`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFit {
    /// The shape's name.
    pub model: String,
    /// Its parameter count.
    pub parameters: u64,
    /// What it needs.
    pub footprint: MemoryFootprint,
    /// memory − footprint total.
    pub headroom_bytes: f64,
}

/// The candidate with the most parameters whose footprint fits in `memory_bytes`; `None` when
/// none fits. Ties go to the earlier candidate.
pub fn largest_fitting(
    candidates: &[ModelShape],
    memory_bytes: f64,
    usage: MemoryUse,
) -> Result<Option<ModelFit>, ModelError> {
    if !(memory_bytes.is_finite() && memory_bytes >= 0.0) {
        return Err(ModelError::OutOfRange {
            what: "memory_bytes".into(),
            expected: "zero or more bytes, finite",
            found: memory_bytes,
        });
    }
    let mut best: Option<ModelFit> = None;
    for shape in candidates {
        let footprint = memory_footprint(shape, usage)?;
        let parameters = shape.parameters().total;
        let larger = best.as_ref().is_none_or(|b| parameters > b.parameters);
        if footprint.total <= memory_bytes && larger {
            best = Some(ModelFit {
                model: shape.name.clone(),
                parameters,
                footprint,
                headroom_bytes: memory_bytes - footprint.total,
            });
        }
    }
    Ok(best)
}

/// Largest parameter count whose resident bytes fit: (memory − reserved) ÷ bytes per
/// parameter, 0 when nothing fits. `bytes_per_parameter` is the weight size, plus the weight
/// size again and the Adam state when training (2 + 2 + 12 = 16 for bf16); `reserved_bytes`
/// is what else must fit (a KV cache).
pub fn max_parameters_fitting(
    memory_bytes: f64,
    reserved_bytes: f64,
    bytes_per_parameter: f64,
) -> Result<f64, ModelError> {
    if !(bytes_per_parameter.is_finite() && bytes_per_parameter > 0.0) {
        return Err(ModelError::OutOfRange {
            what: "bytes_per_parameter".into(),
            expected: "a positive, finite size",
            found: bytes_per_parameter,
        });
    }
    Ok(((memory_bytes - reserved_bytes) / bytes_per_parameter).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roofs::RoofKind;
    use crate::roofs::tests::machine;
    use crate::shape::Dtypes;
    use silirep_core::Dtype;

    #[test]
    fn ttft_is_prefill_plus_one_step() {
        let m = machine("m", 10e12, 100e9);
        let ttft = predict_ttft(&ModelShape::mistral_7b(), &m, 1, 871).unwrap();
        // 1.235708018688 s (prefill, compute-bound) + 0.14336211456 s (step, memory-bound)
        assert!((ttft.ttft_s - 1.379_070_133_248).abs() < 1e-12);
    }

    #[test]
    fn decode_rates_rise_until_compute_binds() {
        // 2 TFLOP/s, 1 TB/s: ridge at 2 FLOP/byte; decode does ~1 FLOP per weight byte per
        // sequence (2 FLOPs per 2-byte weight), so batch 1 is memory-bound and batch 64
        // compute-bound.
        let m = machine("m", 2e12, 1e12);
        let rates = predict_decode_rates(&ModelShape::mistral_7b(), &m, 0, &[1, 64]).unwrap();
        assert_eq!(rates[0].step.bound_by, RoofKind::Memory);
        assert_eq!(
            rates[1].step.bound_by,
            RoofKind::Compute {
                precision: Dtype::F16
            }
        );
        // batch 64: FLOPs = 64·(14,220,787,712 + 32·16384·1) = 910,163,968,000; at 2e12 FLOP/s
        // a step takes 0.455081984 s: 140.63 tokens/s
        assert!((rates[1].step.time_s - 0.455_081_984).abs() < 1e-12);
        assert!((rates[1].tokens_per_s - 64.0 / 0.455_081_984).abs() < 1e-9);
        assert!(rates[1].tokens_per_s > rates[0].tokens_per_s);
        assert!(predict_decode_rates(&ModelShape::mistral_7b(), &m, 0, &[0]).is_err());
    }

    #[test]
    fn generation_sums_steps_at_growing_context() {
        // A memory-only view: with compute far above, each step's time is bytes / 1e11.
        // Step at context C reads 14,221,328,384 + C·131,072 + 131,072 + 588,288 bytes.
        // Contexts 10 and 11: 2·14,221,328,384 + 21·131,072 + 2·(131,072 + 588,288)
        // = 28,442,656,768 + 2,752,512 + 1,438,720 = 28,446,848,000 bytes → 0.28446848 s
        let m = machine("m", 1e18, 1e11);
        let request = Request {
            batch: 1,
            prompt_tokens: 10,
            output_tokens: 2,
        };
        let g = predict_generation(&ModelShape::mistral_7b(), &m, request).unwrap();
        assert!((g.decode_time_s - 0.284_468_48).abs() < 1e-12);
        assert!((g.decode_tokens_per_s - 2.0 / 0.284_468_48).abs() < 1e-9);
        assert!((g.end_to_end_s - g.ttft.prefill.time_s - g.decode_time_s).abs() < 1e-15);
        let none = Request {
            output_tokens: 0,
            ..request
        };
        assert!(predict_generation(&ModelShape::mistral_7b(), &m, none).is_err());
    }

    #[test]
    fn training_step_prediction_is_compute_bound() {
        let m = machine("m", 100e12, 1e12);
        let p = predict_training_step(&ModelShape::mistral_7b(), &m, 1, 4096, true).unwrap();
        assert!(matches!(p.bound_by, RoofKind::Compute { .. }));
    }

    #[test]
    fn footprints_and_fits() {
        let f16 = memory_footprint(
            &ModelShape::mistral_7b(),
            MemoryUse {
                batch: 1,
                context_tokens: 871,
                training: false,
            },
        )
        .unwrap();
        // 2·7,241,732,096 + 114,163,712 = 14,597,627,904
        assert_eq!(f16.total, 14_597_627_904.0);
        let train = memory_footprint(
            &ModelShape::mistral_7b(),
            MemoryUse {
                batch: 0,
                context_tokens: 0,
                training: true,
            },
        )
        .unwrap();
        // 16 bytes per parameter: 115,867,713,536
        assert_eq!(train.total, 16.0 * 7_241_732_096.0);
        let inference = MemoryUse {
            batch: 1,
            context_tokens: 4096,
            training: false,
        };
        // 24 GB: Mistral (14.5 GB) and Llama-3-8B (16.1 GB + 0.5 GB KV) fit; Llama-3-8B wins.
        let fit = largest_fitting(&ModelShape::presets(), 24e9, inference)
            .unwrap()
            .unwrap();
        assert_eq!(fit.model, "Llama-3-8B");
        // 4-bit weights: Mixtral 46.7e9 · 0.5 = 23.35 GB + 4096·131,072 = 0.54 GB > 24 GB? 23.89 GB: fits
        let q4: Vec<ModelShape> = ModelShape::presets()
            .into_iter()
            .map(|s| {
                s.with_dtypes(Dtypes {
                    weight: Dtype::Q4,
                    ..Dtypes::uniform(Dtype::F16)
                })
            })
            .collect();
        let fit = largest_fitting(&q4, 24e9, inference).unwrap().unwrap();
        assert_eq!(fit.model, "Mixtral-8x7B");
        assert!(
            largest_fitting(&ModelShape::presets(), 1e9, inference)
                .unwrap()
                .is_none()
        );
        assert!(largest_fitting(&ModelShape::presets(), f64::NAN, inference).is_err());
        // 128 GB, 16 bytes per parameter for bf16 Adam: 8e9 parameters
        assert_eq!(max_parameters_fitting(128e9, 0.0, 16.0).unwrap(), 8e9);
        assert_eq!(max_parameters_fitting(1.0, 2.0, 16.0).unwrap(), 0.0);
        assert!(max_parameters_fitting(1.0, 0.0, 0.0).is_err());
    }
}
