//! Model-level predictions from measured rooflines, and the measurements they explain.
//!
//! Orchestration only: every formula (work per phase, time = max over roofs, the planners) is
//! in `silirep-model`; this module decides which roofs a machine has and where each came from,
//! which request to predict, and which records a prediction is compared with.
//!
//! Rules:
//! - A machine's roofs are its own measurements: the compute ceiling of its roofline at the
//!   model's precision, the memory ceiling of its rooflines, the best link bandwidth of its
//!   interconnect records. Where it measured none, the datasheet catalog's figure is used and
//!   marked `datasheet`; where the catalog has none either, the prediction says which roof is
//!   missing instead of inventing one.
//! - The link between two machines is the one configured for the analysis (`link = {...}` in
//!   `analyses.toml`, e.g. an iperf3 measurement), else the slower of the two machines' fastest
//!   datasheet links that can join two hosts, marked as such.
//! - Every measured rate shown beside a prediction is a record's own estimate; the efficiency
//!   is measured rate ÷ the rate the roofs allow (a bound, so at most 100% unless the record or
//!   the roof is wrong, which the row then says).

use super::catalog::{Catalog, LinkDatasheet};
use super::rooflines::Roofline;
use super::{RateEstimate, RateUnit};
use crate::ingest::{Dataset, MachineInfo, MachineKey, Record};
use silirep_core::{Dtype, KernelSpec, ModelPhase};
use silirep_model::{
    BandwidthBreakEven, DecodeRate, DisaggregationPlan, Dtypes, Link, MachineRoofs, ModelFit,
    ModelShape, ParallelStrategy, Prediction, PromptBreakEven, Request, Roof, RoofKind, RoofSource,
    TrainingJob, TrainingSplit, Ttft, Work,
};

/// Decode batches every machine is predicted at.
pub const DECODE_BATCHES: [u64; 4] = [1, 4, 16, 64];

/// The request the seed's own two-machine experiments ran: Mistral-7B f16, an 871-token prompt,
/// 256 new tokens (mac-ml-benchmark `distributed/*.json`).
pub const DEFAULT_MODEL: &str = "mistral-7b";
pub const DEFAULT_PROMPT_TOKENS: u64 = 871;
pub const DEFAULT_NEW_TOKENS: u64 = 256;

/// The training step predicted per machine and split across two: one sequence of 256 tokens,
/// the seed's fine-tuning configuration (`pytorch_mps_finetuning.json`: batch 1, seq 256).
pub const TRAINING_JOB: TrainingJob = TrainingJob {
    batch: 1,
    seq_len: 256,
    recompute_activations: false,
};

/// Longest prompt the break-even search tries.
pub const MAX_PROMPT_TOKENS: u64 = 32_768;

/// Below this efficiency a row says where the time goes.
pub const LARGE_GAP: f64 = 0.5;

/// What to predict: a model and a request, as an analysis configures them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelRequest {
    pub model: ModelShape,
    pub prompt_tokens: u64,
    pub new_tokens: u64,
}

impl Default for ModelRequest {
    fn default() -> Self {
        ModelRequest {
            model: ModelShape::mistral_7b(),
            prompt_tokens: DEFAULT_PROMPT_TOKENS,
            new_tokens: DEFAULT_NEW_TOKENS,
        }
    }
}

/// A link given by the user (an analysis's `link`, or `silirep predict --link`): a measured
/// or stated bandwidth, with where it comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfiguredLink {
    pub name: String,
    pub gbit_per_s: f64,
    pub source: String,
}

impl ConfiguredLink {
    pub fn to_link(&self) -> Link {
        Link {
            name: self.name.clone(),
            bandwidth_bytes_per_s: self.gbit_per_s * 1e9 / 8.0,
            latency_s: 0.0,
            source: RoofSource::Measured {
                what: self.source.clone(),
            },
        }
    }
}

/// Preset keys as users type them, with the shape each names.
pub fn presets() -> Vec<(String, ModelShape)> {
    ModelShape::presets()
        .into_iter()
        .map(|s| (crate::util::slug(&s.name), s))
        .collect()
}

/// The preset called `name` (`mistral-7b`, `Llama-3-8B`, …); an unknown name is an error that
/// names the closest presets, or all of them.
pub fn preset(name: &str) -> Result<ModelShape, String> {
    let key = crate::util::slug(name);
    let all = presets();
    if let Some((_, shape)) = all.iter().find(|(k, _)| *k == key) {
        return Ok(shape.clone());
    }
    let names: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    let hint = crate::util::did_you_mean(&key, names.iter().copied());
    Err(format!(
        "unknown model {name:?}{hint}; the presets are {}",
        names.join(", ")
    ))
}

/// The preset a record's model names (`mistralai/Mistral-7B-v0.1`, `…Mistral-7B-Instruct-v0.2-4bit`)
/// at the record's precision, or why there is none.
pub fn record_model(model: &str, precision: &str) -> Result<ModelShape, String> {
    let key = crate::util::slug(model);
    let shape = presets()
        .into_iter()
        .find(|(k, _)| key.contains(k.as_str()))
        .map(|(_, s)| s)
        .ok_or_else(|| format!("no preset describes model {model:?}"))?;
    let lower = precision.to_ascii_lowercase();
    let dtypes = if let Some(d) = Dtype::parse(precision) {
        Dtypes::uniform(d)
    } else if lower.contains("4-bit") || lower.contains("q4") {
        // Quantised weights, f16 arithmetic and cache (MLX, llama.cpp).
        Dtypes {
            weight: Dtype::Q4,
            kv: Dtype::F16,
            compute: Dtype::F16,
        }
    } else {
        return Err(format!(
            "precision {precision:?} is not one the model knows"
        ));
    };
    Ok(shape.with_dtypes(dtypes))
}

/// One machine's roofs for a precision, with what could not be found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoofsFound {
    pub roofs: MachineRoofs,
    /// Roofs neither measured nor in the catalog, in words (`compute (f16)`).
    pub missing: Vec<String>,
}

/// A machine's roofs for work at `precision`: compute and memory from its rooflines, its
/// link from its interconnect records; each falls back to the catalog, marked `datasheet`.
pub fn machine_roofs(
    dataset: &Dataset,
    rooflines: &[Roofline],
    catalog: &Catalog,
    machine: &MachineKey,
    precision: Dtype,
) -> RoofsFound {
    let info = dataset.machines.get(machine);
    let datasheet = info.and_then(|i| catalog.find(&i.label, i.accelerator.as_deref()));
    let own: Vec<&Roofline> = rooflines.iter().filter(|r| &r.machine == machine).collect();
    let mut roofs = Vec::new();
    let mut missing = Vec::new();

    let compute_kind = RoofKind::Compute { precision };
    match own.iter().find(|r| r.precision == precision.name()) {
        Some(r) => roofs.push(Roof {
            kind: compute_kind,
            rate: r.compute.value,
            source: RoofSource::Measured {
                what: ceiling_text(&r.compute),
            },
        }),
        None => match datasheet
            .as_ref()
            .and_then(|d| Some((d, *d.peak_flops_per_s.get(precision.name())?)))
        {
            Some((d, peak)) => roofs.push(Roof {
                kind: compute_kind,
                rate: peak,
                source: RoofSource::Datasheet {
                    what: d.source.clone(),
                },
            }),
            None => missing.push(compute_kind.to_string()),
        },
    }

    // The memory ceiling does not depend on the precision: every roofline of the machine
    // carries the same one.
    match own.first() {
        Some(r) => roofs.push(Roof {
            kind: RoofKind::Memory,
            rate: r.memory.value,
            source: RoofSource::Measured {
                what: ceiling_text(&r.memory),
            },
        }),
        None => match datasheet
            .as_ref()
            .and_then(|d| Some((d, d.bandwidth_bytes_per_s?)))
        {
            Some((d, bandwidth)) => roofs.push(Roof {
                kind: RoofKind::Memory,
                rate: bandwidth,
                source: RoofSource::Datasheet {
                    what: d.source.clone(),
                },
            }),
            None => missing.push(RoofKind::Memory.to_string()),
        },
    }

    // The link between the machine's own devices (its GPUs): what multi-device work inside it
    // crosses. Links that join hosts are planned per pair of machines, not here.
    if let Some(link) = measured_device_link(dataset, machine).or_else(|| {
        let d = datasheet.as_ref()?;
        catalog
            .machine_links(d)
            .into_iter()
            .find(|l| !l.between_hosts)
            .map(datasheet_link_roof)
    }) {
        roofs.push(link);
    }
    RoofsFound {
        roofs: MachineRoofs {
            machine: machine.label.clone(),
            roofs,
        },
        missing,
    }
}

fn ceiling_text(c: &super::rooflines::Ceiling) -> String {
    format!("best of {} {} ({})", c.kernel, c.params, c.framework)
}

fn datasheet_link_roof(link: &LinkDatasheet) -> Roof {
    Roof {
        kind: RoofKind::Link {
            name: link.name.clone(),
        },
        rate: link.bandwidth_bytes_per_s,
        source: RoofSource::Datasheet {
            what: link.source.clone(),
        },
    }
}

fn usable(r: &Record) -> bool {
    r.timing.is_some() && r.error.is_none() && r.verification != crate::ingest::Verification::Failed
}

/// The fastest device-to-device transfer a machine measured: a peer copy's bytes per second
/// (one direction), or a collective's bus bandwidth (nccl-tests' busbw, comparable with one
/// link's peak). Host transfers are not device-to-device links and are left out.
fn measured_device_link(dataset: &Dataset, machine: &MachineKey) -> Option<Roof> {
    let mut best: Option<(f64, &Record)> = None;
    for r in dataset
        .records
        .iter()
        .filter(|r| &r.machine == machine && usable(r))
    {
        if !matches!(
            r.spec,
            KernelSpec::PeerCopy { .. } | KernelSpec::Collective { .. }
        ) {
            continue;
        }
        let Some(time) = r.timing.as_ref().map(|t| t.center_s()) else {
            continue;
        };
        let Some(rate) = r.spec.bus_bytes().map(|b| b / time) else {
            continue;
        };
        if rate.is_finite() && rate > 0.0 && best.is_none_or(|(b, _)| rate > b) {
            best = Some((rate, r));
        }
    }
    let (rate, r) = best?;
    let what = match &r.spec {
        KernelSpec::Collective { .. } => "bus bandwidth",
        _ => "bytes per second",
    };
    Some(Roof {
        kind: RoofKind::Link {
            name: format!("GPU to GPU ({})", r.spec.name()),
        },
        rate,
        source: RoofSource::Measured {
            what: format!(
                "best {what} of {} {} ({})",
                r.spec.name(),
                r.spec.params_label(),
                r.source.file
            ),
        },
    })
}

/// The memory a model must fit in: the accelerator's own memory from the catalog where it
/// has one (an NVIDIA GPU), else the machine's memory as its result files state it (unified
/// memory on Apple Silicon, the host's on a CPU).
pub fn memory_capacity(info: Option<&MachineInfo>, catalog: &Catalog) -> Option<(f64, RoofSource)> {
    let info = info?;
    if let Some(d) = catalog.find(&info.label, info.accelerator.as_deref())
        && let Some(bytes) = d.memory_capacity_bytes
    {
        return Some((bytes, RoofSource::Datasheet { what: d.source }));
    }
    info.memory_bytes.map(|b| {
        (
            b as f64,
            RoofSource::Measured {
                what: "memory the machine's result files state".into(),
            },
        )
    })
}

/// Everything predicted for one machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachinePredictions {
    pub machine: MachineKey,
    pub roofs: RoofsFound,
    pub memory: Option<(f64, RoofSource)>,
    /// `Err` says which roof is missing.
    pub phases: Result<PhasePredictions, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PhasePredictions {
    pub ttft: Ttft,
    pub decode: Vec<DecodeRate>,
    pub generation_end_to_end_s: f64,
    pub generation_tokens_per_s: f64,
    pub training: Prediction,
    /// The preset with the most parameters whose weights and KV cache fit (inference), and the
    /// one whose weights, gradients and Adam state fit (training).
    pub largest_for_inference: Option<ModelFit>,
    pub largest_for_training: Option<ModelFit>,
    /// The training step split by tensor parallelism over two of the machine's own devices
    /// joined by its device link, where it has one.
    pub two_device_training: Option<TrainingSplit>,
}

pub fn predict_machine(
    dataset: &Dataset,
    rooflines: &[Roofline],
    catalog: &Catalog,
    machine: &MachineKey,
    request: &ModelRequest,
) -> MachinePredictions {
    let roofs = machine_roofs(
        dataset,
        rooflines,
        catalog,
        machine,
        request.model.dtypes.compute,
    );
    let memory = memory_capacity(dataset.machines.get(machine), catalog);
    let phases = phase_predictions(&roofs.roofs, memory.as_ref().map(|m| m.0), request)
        .map_err(|e| e.to_string());
    MachinePredictions {
        machine: machine.clone(),
        roofs,
        memory,
        phases,
    }
}

fn phase_predictions(
    roofs: &MachineRoofs,
    memory_bytes: Option<f64>,
    request: &ModelRequest,
) -> Result<PhasePredictions, silirep_model::ModelError> {
    let shape = &request.model;
    let generation = silirep_model::predict_generation(
        shape,
        roofs,
        Request {
            batch: 1,
            prompt_tokens: request.prompt_tokens,
            output_tokens: request.new_tokens,
        },
    )?;
    let decode =
        silirep_model::predict_decode_rates(shape, roofs, request.prompt_tokens, &DECODE_BATCHES)?;
    let training = silirep_model::predict_training_step(
        shape,
        roofs,
        TRAINING_JOB.batch,
        TRAINING_JOB.seq_len,
        TRAINING_JOB.recompute_activations,
    )?;
    let candidates: Vec<ModelShape> = ModelShape::presets()
        .into_iter()
        .map(|s| s.with_dtypes(shape.dtypes))
        .collect();
    let fit = |training: bool| -> Result<Option<ModelFit>, silirep_model::ModelError> {
        match memory_bytes {
            Some(bytes) => silirep_model::largest_fitting(
                &candidates,
                bytes,
                silirep_model::MemoryUse {
                    batch: 1,
                    context_tokens: request.prompt_tokens + request.new_tokens,
                    training,
                },
            ),
            None => Ok(None),
        }
    };
    let device_link = roofs.roofs.iter().find_map(|r| match &r.kind {
        RoofKind::Link { name } => Some(Link {
            name: name.clone(),
            bandwidth_bytes_per_s: r.rate,
            latency_s: 0.0,
            source: r.source.clone(),
        }),
        _ => None,
    });
    let two_device_training = device_link
        .map(|link| {
            silirep_model::plan_training_split(
                shape,
                ParallelStrategy::Tensor,
                roofs,
                roofs,
                &link,
                TRAINING_JOB,
                None,
            )
        })
        .transpose()?;
    Ok(PhasePredictions {
        two_device_training,
        ttft: generation.ttft,
        decode,
        generation_end_to_end_s: generation.end_to_end_s,
        generation_tokens_per_s: generation.decode_tokens_per_s,
        training,
        largest_for_inference: fit(false)?,
        largest_for_training: fit(true)?,
    })
}

/// A measurement beside the bound its machine's roofs put on it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Efficiency {
    pub machine: MachineKey,
    pub workload: String,
    pub params: String,
    pub framework: String,
    pub unit: RateUnit,
    pub measured: f64,
    pub bound: f64,
    /// measured ÷ bound.
    pub efficiency: f64,
    pub bound_by: RoofKind,
    /// For a decode through part of its model: (model layers, measured and bound rates of
    /// the whole model).
    pub whole_model: Option<(u64, f64, f64)>,
    /// Where the gap goes (efficiency below [`LARGE_GAP`]), what the bound assumes, or why
    /// the measurement is above it.
    pub notes: Vec<String>,
    /// The record's file (relative to the results root) and JSON path.
    pub file: String,
    pub source: String,
}

/// Every record that a model-level prediction can be compared with: whole-model runs, and
/// silirep's own decode and layer kernels, beside the bound of their machine's roofs.
/// Records that cannot be compared (no preset for their model, a roof missing) are skipped:
/// they are still on the machine pages.
pub fn efficiencies(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    rooflines: &[Roofline],
    catalog: &Catalog,
) -> Vec<Efficiency> {
    let mut out = Vec::new();
    for (r, rate) in dataset.records.iter().zip(rates) {
        let Some(rate) = rate.as_ref().filter(|_| usable(r)) else {
            continue;
        };
        if let Some(e) = efficiency(dataset, rooflines, catalog, r, rate) {
            out.push(e);
        }
    }
    out
}

fn efficiency(
    dataset: &Dataset,
    rooflines: &[Roofline],
    catalog: &Catalog,
    r: &Record,
    rate: &RateEstimate,
) -> Option<Efficiency> {
    let mut notes = Vec::new();
    let (bound_rate, prediction, whole_model) = match &r.spec {
        KernelSpec::Model {
            model,
            phase,
            precision,
            batch,
            seq_len,
            ..
        } => {
            let shape = record_model(model, precision).ok()?;
            let roofs = machine_roofs(
                dataset,
                rooflines,
                catalog,
                &r.machine,
                shape.dtypes.compute,
            );
            let batch = (*batch).max(1);
            // Phases other than these (a KV transfer, a whole request) are not one phase of
            // the model's work; [`measured_splits`] compares them. `if` rather than `match`,
            // so readers may add phases without this comparison silently changing.
            if *phase == ModelPhase::Prefill {
                if *seq_len == 0 {
                    return None;
                }
                let p =
                    silirep_model::predict_prefill(&shape, &roofs.roofs, batch, *seq_len).ok()?;
                ((batch * seq_len) as f64 / p.time_s, p, None)
            } else if *phase == ModelPhase::Decode {
                let p = silirep_model::predict_phase(
                    &silirep_model::decode_step(&shape, batch, *seq_len).ok()?,
                    &roofs.roofs,
                )
                .ok()?;
                if *seq_len == 0 {
                    notes.push(
                        "the file does not record the context length: the bound is at an \
                         empty cache (the fastest a step can be)"
                            .into(),
                    );
                }
                (batch as f64 / p.time_s, p, None)
            } else if *phase == ModelPhase::Train {
                if *seq_len == 0 {
                    return None;
                }
                let p = silirep_model::predict_training_step(
                    &shape,
                    &roofs.roofs,
                    batch,
                    *seq_len,
                    false,
                )
                .ok()?;
                if let Some(n) = r
                    .notes
                    .iter()
                    .find(|n| n.starts_with("trainable parameters"))
                {
                    notes.push(format!(
                        "the bound is full fine-tuning (every weight's gradient and Adam \
                         state); this run trained a subset ({n}), which needs fewer FLOPs \
                         and bytes, so its true bound is higher and its efficiency lower"
                    ));
                }
                ((batch * seq_len) as f64 / p.time_s, p, None)
            } else {
                return None;
            }
        }
        KernelSpec::Decode { batch, dtype, .. } => {
            let roofs = machine_roofs(dataset, rooflines, catalog, &r.machine, *dtype);
            let p = silirep_model::predict_phase(&counted_work(r, *dtype)?, &roofs.roofs).ok()?;
            let bound = *batch as f64 / p.time_s;
            let whole = r
                .spec
                .whole_model_decode_rate(rate.value)
                .zip(r.spec.whole_model_decode_rate(bound))
                .map(|((layers, measured), (_, bound))| (layers, measured, bound));
            (bound, p, whole)
        }
        // Whole layers: the blocks' rows would repeat what the layer's say.
        KernelSpec::Layer {
            dtype,
            part: silirep_core::LayerPart::Full,
            ..
        } => {
            let roofs = machine_roofs(dataset, rooflines, catalog, &r.machine, *dtype);
            let p = silirep_model::predict_phase(&counted_work(r, *dtype)?, &roofs.roofs).ok()?;
            let bound = match rate.unit {
                RateUnit::FlopPerS => r.spec.flops()? / p.time_s,
                RateUnit::TokenPerS => r.spec.tokens()? / p.time_s,
                RateUnit::BytePerS => r.spec.bytes()? / p.time_s,
            };
            (bound, p, None)
        }
        _ => return None,
    };
    let efficiency = rate.value / bound_rate;
    if efficiency > 1.005 {
        notes.push(
            "above the bound: the roofs allow less than this; the rate or the work counted \
             for it is wrong (the comparison tables flag suspect rows), or the roof was \
             measured below the machine's real ceiling"
                .into(),
        );
    } else if efficiency < LARGE_GAP {
        notes.push(gap_text(&prediction, efficiency));
    }
    Some(Efficiency {
        machine: r.machine.clone(),
        workload: r.spec.name(),
        params: r.spec.params_label(),
        framework: r.framework.clone(),
        unit: rate.unit,
        measured: rate.value,
        bound: bound_rate,
        efficiency,
        bound_by: prediction.bound_by.clone(),
        whole_model,
        notes,
        file: r.source.file.clone(),
        source: format!("{} {}", r.source.file, r.source.json_path),
    })
}

/// A kernel's work as silirep-core counts it (FLOPs and minimum bytes), for the roofs to
/// bound. Its bytes are not broken down by kind: only their total meets the memory roof.
fn counted_work(r: &Record, precision: Dtype) -> Option<Work> {
    Some(silirep_model::counted_work(
        &r.spec.name(),
        precision,
        r.spec.flops()?,
        r.spec.bytes()?,
    ))
}

/// Where the time of a run far from its bound goes, from the prediction's own roofs: how many
/// times the bound it took, and how long each roof alone would have needed.
fn gap_text(prediction: &Prediction, efficiency: f64) -> String {
    use crate::util::format;
    let roofs: Vec<String> = prediction
        .per_roof
        .iter()
        .map(|t| format!("{} {}", t.kind, format::duration(t.time_s)))
        .collect();
    format!(
        "took {} the bound; the roofs alone need {} — the rest is time no roof accounts for \
         (framework overhead, synchronisation, kernels below their ceilings)",
        format::ratio(1.0 / efficiency),
        roofs.join(", ")
    )
}

/// Two machines and the link between them: serving and training plans.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairPlan {
    pub a: MachineKey,
    pub b: MachineKey,
    pub link: Link,
    /// `Err` says which roof is missing.
    pub plan: Result<PairPredictions, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairPredictions {
    pub serving: DisaggregationPlan,
    /// Prefill on the machine that prefills faster, decode on the other.
    pub split_prefill_on: MachineKey,
    pub split_decode_on: MachineKey,
    pub prompt_break_even: PromptBreakEven,
    pub bandwidth_break_even: BandwidthBreakEven,
    pub tensor_training: TrainingSplit,
    /// With the mixture-of-experts preset (Mixtral-8x7B at the request's precision).
    pub expert_training: Option<TrainingSplit>,
}

/// The link between two machines: the configured one, else the slower of the two machines'
/// fastest datasheet links that join hosts (a Thunderbolt 5 port and a Thunderbolt 4 port
/// connect at Thunderbolt 4 speed). `None` when the catalog knows no such link for one of them.
pub fn pair_link(
    dataset: &Dataset,
    catalog: &Catalog,
    a: &MachineKey,
    b: &MachineKey,
    configured: Option<&ConfiguredLink>,
) -> Option<Link> {
    if let Some(c) = configured {
        return Some(c.to_link());
    }
    let fastest = |m: &MachineKey| -> Option<LinkDatasheet> {
        let info = dataset.machines.get(m)?;
        let d = catalog.find(&info.label, info.accelerator.as_deref())?;
        catalog
            .machine_links(&d)
            .into_iter()
            .find(|l| l.between_hosts)
            .cloned()
    };
    let (la, lb) = (fastest(a)?, fastest(b)?);
    let slower = if lb.bandwidth_bytes_per_s < la.bandwidth_bytes_per_s {
        lb
    } else {
        la
    };
    Some(Link {
        name: slower.name.clone(),
        bandwidth_bytes_per_s: slower.bandwidth_bytes_per_s,
        latency_s: 0.0,
        source: RoofSource::Datasheet {
            what: format!(
                "{} (no link configured for this analysis: the slower of the two machines' \
                 fastest host-to-host links)",
                slower.source
            ),
        },
    })
}

pub fn plan_pair(
    a: &MachinePredictions,
    b: &MachinePredictions,
    link: Link,
    request: &ModelRequest,
) -> PairPlan {
    let plan = pair_predictions(&a.roofs.roofs, &b.roofs.roofs, &link, request).map(
        |(serving, a_prefills, prompt, bandwidth, tensor, expert)| {
            let (p, d) = if a_prefills {
                (a.machine.clone(), b.machine.clone())
            } else {
                (b.machine.clone(), a.machine.clone())
            };
            PairPredictions {
                serving,
                split_prefill_on: p,
                split_decode_on: d,
                prompt_break_even: prompt,
                bandwidth_break_even: bandwidth,
                tensor_training: tensor,
                expert_training: expert,
            }
        },
    );
    PairPlan {
        a: a.machine.clone(),
        b: b.machine.clone(),
        link,
        plan: plan.map_err(|e| e.to_string()),
    }
}

type PairParts = (
    DisaggregationPlan,
    bool,
    PromptBreakEven,
    BandwidthBreakEven,
    TrainingSplit,
    Option<TrainingSplit>,
);

fn pair_predictions(
    a: &MachineRoofs,
    b: &MachineRoofs,
    link: &Link,
    request: &ModelRequest,
) -> Result<PairParts, silirep_model::ModelError> {
    let shape = &request.model;
    let req = Request {
        batch: 1,
        prompt_tokens: request.prompt_tokens,
        output_tokens: request.new_tokens,
    };
    let serving = silirep_model::plan_disaggregation(shape, a, b, link, req)?;
    // options: A alone, B alone, A → B, B → A; the split worth planning prefills on the
    // machine whose prefill is shorter.
    let a_prefills = serving.options[0].prefill.time_s <= serving.options[1].prefill.time_s;
    let (p, d) = if a_prefills { (a, b) } else { (b, a) };
    let prompt = silirep_model::break_even_prompt_tokens(
        shape,
        p,
        d,
        link,
        1,
        request.new_tokens,
        MAX_PROMPT_TOKENS,
    )?;
    let bandwidth = silirep_model::break_even_link_bandwidth(shape, p, d, link, req)?;
    let tensor = silirep_model::plan_training_split(
        shape,
        ParallelStrategy::Tensor,
        a,
        b,
        link,
        TRAINING_JOB,
        None,
    )?;
    let moe = if shape.is_moe() {
        shape.clone()
    } else {
        ModelShape::mixtral_8x7b().with_dtypes(shape.dtypes)
    };
    let expert = silirep_model::plan_training_split(
        &moe,
        ParallelStrategy::Expert,
        a,
        b,
        link,
        TRAINING_JOB,
        None,
    )
    .ok();
    Ok((serving, a_prefills, prompt, bandwidth, tensor, expert))
}

/// Kernel names readers give the parts of a model-level run that are not one phase of the
/// model's work: moving a prefill's KV cache to the machine that decodes (phase `kv_transfer`),
/// and a whole request (`end_to_end`). Matched by name so that this module needs no change
/// when readers add phases.
pub const KV_TRANSFER_KERNEL: &str = "model_kv_transfer";
pub const END_TO_END_KERNEL: &str = "model_end_to_end";

/// A measured disaggregated run — one file with a prefill, a KV transfer and a decode — beside
/// the plan's bounds for the same phases, so the reader sees which phase lost the time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MeasuredSplit {
    pub file: String,
    pub prefill: Option<Efficiency>,
    pub decode: Option<Efficiency>,
    pub transfer: Option<TransferVsLink>,
    /// Measured and predicted end-to-end seconds, where the run's request is the plan's.
    pub end_to_end: Option<(f64, f64)>,
}

/// A measured KV-cache move beside the time the link needs for its bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TransferVsLink {
    pub machine: MachineKey,
    pub framework: String,
    pub measured_s: f64,
    pub bytes: f64,
    /// Where the byte count comes from: the file, or the model's KV formula.
    pub bytes_from: String,
    pub link_s: f64,
}

impl TransferVsLink {
    /// How many times the link's time the move took.
    pub fn times_link(&self) -> f64 {
        self.measured_s / self.link_s
    }
}

fn center_s(r: &Record) -> Option<f64> {
    r.timing
        .as_ref()
        .map(|t| t.center_s())
        .filter(|t| t.is_finite() && *t > 0.0)
}

/// Every file holding a KV transfer on one of the pair's machines, as a measured split.
pub fn measured_splits(
    dataset: &Dataset,
    efficiencies: &[Efficiency],
    pair: &PairPlan,
    request: &ModelRequest,
) -> Vec<MeasuredSplit> {
    let on_pair = |m: &MachineKey| *m == pair.a || *m == pair.b;
    let mut out: Vec<MeasuredSplit> = Vec::new();
    for r in dataset
        .records
        .iter()
        .filter(|r| r.spec.name() == KV_TRANSFER_KERNEL && usable(r) && on_pair(&r.machine))
    {
        let KernelSpec::Model {
            model,
            precision,
            batch,
            seq_len,
            ..
        } = &r.spec
        else {
            continue;
        };
        let Some(measured_s) = center_s(r) else {
            continue;
        };
        let (bytes, bytes_from) = match r.reported.get("kv_bytes") {
            Some(b) => (*b, "the file".to_string()),
            None => match record_model(model, precision)
                .ok()
                .and_then(|s| silirep_model::kv_cache_bytes(&s, (*batch).max(1), *seq_len).ok())
            {
                Some(b) => (b, "the model's KV formula".to_string()),
                None => continue,
            },
        };
        let file = r.source.file.clone();
        let in_file = |workload: &str| {
            efficiencies
                .iter()
                .find(|e| e.file == file && e.workload == workload && on_pair(&e.machine))
                .cloned()
        };
        let (prefill, decode) = (in_file("model_prefill"), in_file("model_decode"));
        let end_to_end = dataset
            .records
            .iter()
            .find(|e| e.source.file == file && e.spec.name() == END_TO_END_KERNEL && usable(e))
            .and_then(|e| {
                let KernelSpec::Model {
                    seq_len, tokens, ..
                } = &e.spec
                else {
                    return None;
                };
                let same_request =
                    *seq_len == request.prompt_tokens && *tokens == request.new_tokens;
                let (p, d) = (prefill.as_ref()?, decode.as_ref()?);
                let plan = pair.plan.as_ref().ok()?;
                let predicted = plan.serving.options.iter().find(|o| {
                    matches!(&o.placement, silirep_model::Placement::Split { prefill_on, decode_on }
                        if *prefill_on == p.machine.label && *decode_on == d.machine.label)
                })?;
                same_request.then_some((center_s(e)?, predicted.end_to_end_s))
            });
        out.push(MeasuredSplit {
            file: file.clone(),
            prefill,
            decode,
            transfer: Some(TransferVsLink {
                machine: r.machine.clone(),
                framework: r.framework.clone(),
                measured_s,
                bytes,
                bytes_from,
                link_s: pair.link.transfer_time_s(bytes),
            }),
            end_to_end,
        });
    }
    out
}

/// Everything model-level about one analysis.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelPredictions {
    pub request: ModelRequest,
    pub machines: Vec<MachinePredictions>,
    pub efficiencies: Vec<Efficiency>,
    /// One plan when the analysis compares exactly two machines.
    pub pair: Option<PairPlan>,
    /// Why there is no pair plan when there are two machines (no link known).
    pub pair_missing: Option<String>,
    /// The two machines' measured attention and FFN blocks, for where attention-heavy layers go.
    pub blocks: Option<BlockRates>,
    /// Measured disaggregated runs between the two machines, phase by phase.
    pub measured_splits: Vec<MeasuredSplit>,
}

/// How two machines compare on the attention block and on the FFN block of the same layer,
/// measured: the geometric mean over matching configurations (same kernel parameters and
/// framework) of b's rate ÷ a's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BlockRates {
    pub a: MachineKey,
    pub b: MachineKey,
    pub attention_b_over_a: f64,
    pub attention_configurations: usize,
    pub ffn_b_over_a: f64,
    pub ffn_configurations: usize,
}

/// Geometric mean of b ÷ a over the configurations of `kernel` both machines measured.
fn matched_ratio(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    a: &MachineKey,
    b: &MachineKey,
    kernel: &str,
) -> Option<(f64, usize)> {
    let mut by_config: std::collections::BTreeMap<(String, String), [Option<f64>; 2]> =
        std::collections::BTreeMap::new();
    for (r, rate) in dataset.records.iter().zip(rates) {
        let Some(rate) = rate
            .as_ref()
            .filter(|_| usable(r) && r.spec.name() == kernel)
        else {
            continue;
        };
        let side = if &r.machine == a {
            0
        } else if &r.machine == b {
            1
        } else {
            continue;
        };
        let slot = by_config
            .entry((r.spec.params_label(), r.framework.clone()))
            .or_default();
        // The best rate per configuration and machine, as the comparison tables take it.
        slot[side] = Some(slot[side].map_or(rate.value, |v: f64| v.max(rate.value)));
    }
    let logs: Vec<f64> = by_config
        .values()
        .filter_map(|[x, y]| Some((y.as_ref()? / x.as_ref()?).ln()))
        .collect();
    (!logs.is_empty()).then(|| {
        (
            (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
            logs.len(),
        )
    })
}

pub fn block_rates(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    a: &MachineKey,
    b: &MachineKey,
) -> Option<BlockRates> {
    let (attention, na) = matched_ratio(dataset, rates, a, b, "layer_attention_forward")?;
    let (ffn, nf) = matched_ratio(dataset, rates, a, b, "layer_ffn_forward")?;
    Some(BlockRates {
        a: a.clone(),
        b: b.clone(),
        attention_b_over_a: attention,
        attention_configurations: na,
        ffn_b_over_a: ffn,
        ffn_configurations: nf,
    })
}

pub fn predict(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    rooflines: &[Roofline],
    catalog: &Catalog,
    request: &ModelRequest,
    link: Option<&ConfiguredLink>,
) -> ModelPredictions {
    let machines: Vec<MachinePredictions> = dataset
        .machines
        .keys()
        .map(|m| predict_machine(dataset, rooflines, catalog, m, request))
        .collect();
    let efficiencies = efficiencies(dataset, rates, rooflines, catalog);
    let (mut pair, mut pair_missing, mut blocks) = (None, None, None);
    if let [a, b] = machines.as_slice() {
        blocks = block_rates(dataset, rates, &a.machine, &b.machine);
        match pair_link(dataset, catalog, &a.machine, &b.machine, link) {
            Some(l) => pair = Some(plan_pair(a, b, l, request)),
            None => {
                pair_missing = Some(
                    "no link between the two machines is configured (`link` in analyses.toml) \
                     and the datasheet catalog names none for both"
                        .into(),
                )
            }
        }
    }
    ModelPredictions {
        request: request.clone(),
        machines,
        measured_splits: pair
            .as_ref()
            .map(|p| measured_splits(dataset, &efficiencies, p, request))
            .unwrap_or_default(),
        efficiencies,
        pair,
        pair_missing,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use silirep_core::{BandwidthOp, LayerShape};

    fn key(label: &str) -> MachineKey {
        MachineKey::for_tests(label)
    }

    fn record(machine: &MachineKey, spec: KernelSpec, time_s: f64) -> Record {
        Record::for_tests(machine.clone(), spec, vec![time_s; 5])
    }

    fn dataset(label: &str, accelerator: Option<&str>, records: Vec<Record>) -> Dataset {
        let mut d = Dataset::default();
        d.machines.insert(
            key(label),
            MachineInfo {
                label: label.into(),
                accelerator: accelerator.map(str::to_string),
                memory_bytes: Some(32 << 30),
                ..Default::default()
            },
        );
        d.records = records;
        d
    }

    #[test]
    fn roofs_come_from_the_machines_rooflines() {
        let m = key("Box");
        // A 4096³ f16 GEMM in 10 ms: 13.7 TFLOP/s; a 1 GiB triad (3 arrays) in 30 ms.
        let d = dataset(
            "Box",
            None,
            vec![
                record(
                    &m,
                    KernelSpec::Gemm {
                        m: 4096,
                        n: 4096,
                        k: 4096,
                        dtype: Dtype::F16,
                    },
                    0.01,
                ),
                record(
                    &m,
                    KernelSpec::Bandwidth {
                        op: BandwidthOp::Triad,
                        array_bytes: 1 << 30,
                        dtype: Dtype::F32,
                    },
                    0.03,
                ),
            ],
        );
        let catalog = Catalog::built_in();
        let rooflines = crate::analysis::rooflines::rooflines(&d, &catalog);
        let found = machine_roofs(&d, &rooflines, &catalog, &m, Dtype::F16);
        assert!(found.missing.is_empty());
        let [compute, memory] = &found.roofs.roofs[..] else {
            panic!("{:?}", found.roofs)
        };
        assert_eq!(compute.rate, 2.0 * 4096f64.powi(3) / 0.01);
        assert!(matches!(compute.source, RoofSource::Measured { .. }));
        assert_eq!(memory.rate, 3.0 * (1u64 << 30) as f64 / 0.03);
        // No bf16 GEMM and no datasheet: the roof is missing, never guessed.
        let bf16 = machine_roofs(&d, &rooflines, &catalog, &m, Dtype::Bf16);
        assert_eq!(bf16.missing, vec!["compute (bf16)".to_string()]);
        let p = predict_machine(&d, &rooflines, &catalog, &m, &ModelRequest::default());
        let phases = p.phases.unwrap();
        assert_eq!(phases.decode.len(), 4);
        assert_eq!(phases.decode[0].step.bound_by, RoofKind::Memory);
        // 32 GiB holds Mistral-7B's f16 weights (14.5 GB) but not Llama-3-70B's.
        assert_eq!(
            phases.largest_for_inference.unwrap().model,
            "Llama-3-8B".to_string()
        );
    }

    #[test]
    fn missing_measurements_fall_back_to_the_datasheet_marked_as_such() {
        let m = key("Lab H100");
        let d = dataset("Lab H100", Some("NVIDIA H100 80GB HBM3"), vec![]);
        let catalog = Catalog::built_in();
        let found = machine_roofs(&d, &[], &catalog, &m, Dtype::F16);
        assert!(found.missing.is_empty());
        let rates: Vec<(String, f64, bool)> = found
            .roofs
            .roofs
            .iter()
            .map(|r| {
                (
                    r.kind.to_string(),
                    r.rate,
                    matches!(r.source, RoofSource::Datasheet { .. }),
                )
            })
            .collect();
        assert_eq!(
            rates,
            vec![
                ("compute (f16)".to_string(), 989.4e12, true),
                ("memory".to_string(), 3.35e12, true),
                ("link (NVLink 4)".to_string(), 450e9, true),
            ]
        );
        assert_eq!(
            memory_capacity(d.machines.get(&m), &catalog).unwrap().0,
            80e9
        );
    }

    #[test]
    fn a_measured_peer_copy_beats_the_datasheet_link() {
        let m = key("Lab H100");
        let d = dataset(
            "Lab H100",
            Some("NVIDIA H100 80GB HBM3"),
            vec![record(
                &m,
                KernelSpec::PeerCopy {
                    src_device: 0,
                    dst_device: 1,
                    bytes: 1 << 30,
                },
                0.0025,
            )],
        );
        let found = machine_roofs(&d, &[], &Catalog::built_in(), &m, Dtype::F16);
        let link = found.roofs.roofs.last().unwrap();
        assert_eq!(link.rate, (1u64 << 30) as f64 / 0.0025);
        assert!(
            matches!(link.source, RoofSource::Measured { ref what } if what.contains("peer_copy"))
        );
    }

    #[test]
    fn the_pair_link_is_the_configured_one_else_the_slower_datasheet_link() {
        let mut d = dataset("Apple M5", Some("Apple M5"), vec![]);
        d.machines.insert(
            key("Apple M4 Pro"),
            MachineInfo {
                label: "Apple M4 Pro".into(),
                ..Default::default()
            },
        );
        let catalog = Catalog::built_in();
        let (a, b) = (key("Apple M5"), key("Apple M4 Pro"));
        let datasheet = pair_link(&d, &catalog, &a, &b, None).unwrap();
        assert_eq!(datasheet.name, "Thunderbolt 4");
        assert_eq!(datasheet.bandwidth_bytes_per_s, 5e9);
        assert!(matches!(datasheet.source, RoofSource::Datasheet { .. }));
        let configured = ConfiguredLink {
            name: "bridge".into(),
            gbit_per_s: 37.6,
            source: "iperf3".into(),
        };
        let link = pair_link(&d, &catalog, &a, &b, Some(&configured)).unwrap();
        assert_eq!(link.bandwidth_bytes_per_s, 4.7e9);
        assert!(matches!(link.source, RoofSource::Measured { .. }));
    }

    #[test]
    fn silirep_decode_is_bounded_by_its_own_counted_work() {
        let m = key("Box");
        let decode = KernelSpec::Decode {
            batch: 1,
            layers: 1,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F32,
        };
        let bytes = decode.bytes().unwrap();
        let mut d = dataset(
            "Box",
            None,
            vec![
                record(
                    &m,
                    KernelSpec::Gemm {
                        m: 1024,
                        n: 1024,
                        k: 1024,
                        dtype: Dtype::F32,
                    },
                    0.001,
                ),
                record(
                    &m,
                    KernelSpec::Bandwidth {
                        op: BandwidthOp::Read,
                        array_bytes: 1 << 30,
                        dtype: Dtype::F32,
                    },
                    0.1,
                ),
            ],
        );
        // Decoding one layer at a quarter of the memory roof.
        let memory = (1u64 << 30) as f64 / 0.1;
        d.records
            .push(record(&m, decode.clone(), 4.0 * bytes / memory));
        let catalog = Catalog::built_in();
        let rooflines = crate::analysis::rooflines::rooflines(&d, &catalog);
        let rates = crate::analysis::rates(&d);
        let e = efficiencies(&d, &rates, &rooflines, &catalog);
        assert_eq!(e.len(), 1);
        assert!((e[0].efficiency - 0.25).abs() < 1e-9, "{:?}", e[0]);
        assert_eq!(e[0].bound_by, RoofKind::Memory);
        let (layers, measured, bound) = e[0].whole_model.unwrap();
        assert_eq!(layers, 32);
        assert!((bound - memory / bytes / 32.0).abs() < 1e-9 * bound);
        assert!((measured / bound - 0.25).abs() < 1e-9);
        assert!(
            e[0].notes[0].starts_with("took 4.00× the bound"),
            "{:?}",
            e[0].notes
        );
    }

    #[test]
    fn presets_and_record_models_by_name() {
        assert_eq!(preset("Mistral-7B").unwrap().name, "Mistral-7B");
        let e = preset("mistral-8b").unwrap_err();
        assert!(e.contains("did you mean \"mistral-7b\""), "{e}");
        let q4 = record_model(
            "mlx-community/Mistral-7B-Instruct-v0.2-4bit",
            "4-bit quantized",
        )
        .unwrap();
        assert_eq!(q4.dtypes.weight, Dtype::Q4);
        assert_eq!(q4.dtypes.compute, Dtype::F16);
        assert!(record_model("gpt2", "float16").is_err());
    }
}
