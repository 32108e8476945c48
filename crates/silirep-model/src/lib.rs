//! silirep's transformer workload model: how much work a decoder-only transformer does in
//! each phase, how long that takes on a machine described by its measured roofs, and how work
//! could be placed across two unlike machines joined by a link.
//!
//! The flow is one way: a [`ModelShape`] (a preset or a Hugging Face `config.json`) gives the
//! [`Work`] of a phase ([`prefill`], [`decode_step`], [`training_step`], and the collectives
//! of [`tensor_parallel_communication`] and [`expert_parallel_communication`]);
//! [`predict_phase`] divides that work by a machine's [`MachineRoofs`] and names the roof
//! that binds; [`predict`] and [`plan`] build the questions users ask — time to first token,
//! decode tokens/s by batch, what fits, does splitting prefill and decode pay — out of those
//! two steps.
//!
//! Everything here is a pure, deterministic function of its arguments, and every output
//! serialises with serde. Formulas, assumptions and their sources are in `docs/model.md`.

#![deny(missing_docs)]

pub mod error;
pub mod plan;
pub mod predict;
pub mod roofline;
pub mod roofs;
pub mod shape;
pub mod work;

pub use error::ModelError;
pub use plan::{
    BandwidthBreakEven, DisaggregationPlan, ParallelStrategy, Placement, PromptBreakEven,
    ServingOption, SplitBound, TrainingJob, TrainingSplit, break_even_link_bandwidth,
    break_even_prompt_tokens, plan_disaggregation, plan_training_split,
};
pub use predict::{
    DecodeRate, GenerationPrediction, MemoryFootprint, MemoryUse, ModelFit, Request, Ttft,
    largest_fitting, max_parameters_fitting, memory_footprint, predict_decode_rates,
    predict_generation, predict_prefill, predict_training_step, predict_ttft,
};
pub use roofline::{Bound, attainable_flops, bound, ridge_point_flops_per_byte, roof_fraction};
pub use roofs::{
    Link, MachineRoofs, Prediction, Roof, RoofKind, RoofSource, RoofTime, predict_phase,
};
pub use shape::{Dtypes, FfnKind, ModelShape, ParameterCount};
pub use work::{
    ByteBreakdown, Communication, LinkTraffic, Passes, Work, adam_state_bytes_per_parameter,
    counted_work, decode_step, expert_parallel_communication, experts_touched, kv_cache_bytes,
    prefill, tensor_parallel_communication, training_step,
};
