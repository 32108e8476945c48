//! The "Model-level predictions" section of an analysis page: each machine's roofs and where
//! they came from, what they predict for the analysis's model and request, measurements beside
//! their bounds, and — for two machines — the disaggregation and training-split plans with the
//! placement claims they settle. Strings only; numbers through [`crate::util::format`].

use crate::analysis::RateUnit;
use crate::analysis::predictions::{
    BlockRates, DECODE_BATCHES, Efficiency, MachinePredictions, ModelPredictions, PairPlan,
    PairPredictions, TRAINING_JOB,
};
use crate::util::format;
use serde::Serialize;
use silirep_model::{
    BandwidthBreakEven, Placement, Prediction, PromptBreakEven, RoofKind, RoofSource, SplitBound,
    TrainingSplit,
};

#[derive(Serialize, Clone)]
pub struct ModelLevelView {
    /// `Mistral-7B, f16 weights …, an 871-token prompt and 256 new tokens, batch 1`.
    pub request: String,
    pub training_job: String,
    pub decode_batches: String,
    pub roofs: Vec<RoofRowView>,
    pub machines: Vec<MachinePredictionView>,
    pub efficiencies: Vec<EfficiencyView>,
    pub pair: Option<PairView>,
    pub pair_missing: Option<String>,
}

#[derive(Serialize, Clone)]
pub struct RoofRowView {
    pub machine: String,
    pub roof: String,
    pub rate: String,
    pub source: String,
}

#[derive(Serialize, Clone)]
pub struct MachinePredictionView {
    pub machine: String,
    /// Why nothing is predicted (a roof missing), when nothing is.
    pub missing: Option<String>,
    pub prefill: String,
    pub ttft: String,
    pub decode: String,
    pub end_to_end: String,
    pub training: String,
    pub fits: String,
}

#[derive(Serialize, Clone)]
pub struct EfficiencyView {
    pub machine: String,
    pub workload: String,
    pub params: String,
    pub framework: String,
    pub measured: String,
    pub bound: String,
    pub efficiency: String,
    pub bound_by: String,
    pub notes: String,
    pub source: String,
}

#[derive(Serialize, Clone)]
pub struct PairView {
    pub a: String,
    pub b: String,
    pub link: String,
    pub missing: Option<String>,
    pub options: Vec<ServingRowView>,
    pub verdict: String,
    pub break_even: String,
    pub measured_split: Vec<String>,
    pub training: Vec<TrainingRowView>,
    pub claims: Vec<String>,
}

#[derive(Serialize, Clone)]
pub struct ServingRowView {
    pub placement: String,
    pub prefill: String,
    pub transfer: String,
    pub ttft: String,
    pub decode: String,
    pub end_to_end: String,
}

#[derive(Serialize, Clone)]
pub struct TrainingRowView {
    pub strategy: String,
    pub share: String,
    pub step: String,
    pub alone: String,
    pub link_time: String,
    pub bound_by: String,
    pub speedup: String,
}

fn roof_rate(kind: &RoofKind, rate: f64) -> String {
    match kind {
        RoofKind::Compute { .. } => format::si(rate, "FLOP/s"),
        RoofKind::Memory | RoofKind::Link { .. } => format::si(rate, "B/s"),
    }
}

fn source_text(source: &RoofSource) -> String {
    match source {
        RoofSource::Measured { what } => format!("measured: {what}"),
        RoofSource::Datasheet { what } => format!("datasheet: {what}"),
    }
}

fn timed(p: &Prediction) -> String {
    format!("{} ({})", format::duration(p.time_s), p.bound_by)
}

pub fn model_level_view(p: &ModelPredictions) -> ModelLevelView {
    let shape = &p.request.model;
    let d = shape.dtypes;
    let precision = if d.weight == d.compute && d.kv == d.compute {
        d.compute.name().to_string()
    } else {
        format!(
            "{} weights, {} cache, {} arithmetic",
            d.weight.name(),
            d.kv.name(),
            d.compute.name()
        )
    };
    let mut roofs = Vec::new();
    for m in &p.machines {
        for r in &m.roofs.roofs.roofs {
            roofs.push(RoofRowView {
                machine: m.machine.label.clone(),
                roof: r.kind.to_string(),
                rate: roof_rate(&r.kind, r.rate),
                source: source_text(&r.source),
            });
        }
        for missing in &m.roofs.missing {
            roofs.push(RoofRowView {
                machine: m.machine.label.clone(),
                roof: missing.clone(),
                rate: "—".into(),
                source: "not measured, and not in the datasheet catalog".into(),
            });
        }
        if let Some((bytes, source)) = &m.memory {
            roofs.push(RoofRowView {
                machine: m.machine.label.clone(),
                roof: "memory capacity".into(),
                rate: format::si(*bytes, "B"),
                source: source_text(source),
            });
        }
    }
    ModelLevelView {
        request: format!(
            "{} ({} parameters), {precision}; a prompt of {} tokens and {} new tokens, batch 1",
            shape.name,
            format::si(shape.parameters().total as f64, ""),
            p.request.prompt_tokens,
            p.request.new_tokens
        ),
        training_job: format!(
            "batch {} × {} tokens, full fine-tuning with Adam",
            TRAINING_JOB.batch, TRAINING_JOB.seq_len
        ),
        decode_batches: DECODE_BATCHES
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        roofs,
        machines: p.machines.iter().map(machine_view).collect(),
        efficiencies: p.efficiencies.iter().map(efficiency_view).collect(),
        pair: p.pair.as_ref().map(|pair| pair_view(pair, p)),
        pair_missing: p.pair_missing.clone(),
    }
}

fn machine_view(m: &MachinePredictions) -> MachinePredictionView {
    let empty = |missing: String| MachinePredictionView {
        machine: m.machine.label.clone(),
        missing: Some(missing),
        prefill: "—".into(),
        ttft: "—".into(),
        decode: "—".into(),
        end_to_end: "—".into(),
        training: "—".into(),
        fits: "—".into(),
    };
    let phases = match &m.phases {
        Ok(p) => p,
        Err(e) => return empty(e.clone()),
    };
    let decode = phases
        .decode
        .iter()
        .map(|r| {
            format!(
                "{}: {} ({})",
                r.batch,
                format::sig3(r.tokens_per_s),
                r.step.bound_by
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let fit = |f: &Option<silirep_model::ModelFit>| match f {
        Some(f) => format!(
            "{} ({} needed)",
            f.model,
            format::si(f.footprint.total, "B")
        ),
        None => "none of the presets".into(),
    };
    MachinePredictionView {
        machine: m.machine.label.clone(),
        missing: None,
        prefill: timed(&phases.ttft.prefill),
        ttft: format::duration(phases.ttft.ttft_s),
        decode,
        end_to_end: format!(
            "{} ({} tokens/s over the answer)",
            format::duration(phases.generation_end_to_end_s),
            format::sig3(phases.generation_tokens_per_s)
        ),
        training: match &phases.two_device_training {
            Some(t) => format!(
                "{}; over two of its devices by tensor parallelism: {} (link {}, bound by {})",
                timed(&phases.training),
                format::duration(t.step_time_s),
                format::duration(t.link_time_s),
                match t.bound_by {
                    SplitBound::Link => "the link",
                    _ => "compute and memory",
                }
            ),
            None => timed(&phases.training),
        },
        fits: if m.memory.is_some() {
            format!(
                "inference: {}; training: {}",
                fit(&phases.largest_for_inference),
                fit(&phases.largest_for_training)
            )
        } else {
            "memory size unknown".into()
        },
    }
}

fn rate(unit: RateUnit, value: f64) -> String {
    match unit {
        RateUnit::TokenPerS => format!("{} tokens/s", format::sig3(value)),
        _ => format::si(value, unit.symbol()),
    }
}

fn efficiency_view(e: &Efficiency) -> EfficiencyView {
    let (measured, bound) = match e.whole_model {
        Some((layers, measured_all, bound_all)) => (
            format!(
                "{} ({} for all {layers} layers)",
                rate(e.unit, e.measured),
                rate(e.unit, measured_all)
            ),
            format!(
                "{} ({} for all {layers} layers)",
                rate(e.unit, e.bound),
                rate(e.unit, bound_all)
            ),
        ),
        None => (rate(e.unit, e.measured), rate(e.unit, e.bound)),
    };
    EfficiencyView {
        machine: e.machine.label.clone(),
        workload: e.workload.clone(),
        params: e.params.clone(),
        framework: e.framework.clone(),
        measured,
        bound,
        efficiency: format::percent(e.efficiency),
        bound_by: e.bound_by.to_string(),
        notes: e.notes.join("; "),
        source: e.source.clone(),
    }
}

fn placement_text(p: &Placement) -> String {
    match p {
        Placement::Alone { machine } => format!("{machine} alone"),
        Placement::Split {
            prefill_on,
            decode_on,
        } => format!("prefill on {prefill_on} → decode on {decode_on}"),
    }
}

fn pair_view(pair: &PairPlan, all: &ModelPredictions) -> PairView {
    let link = format!(
        "{}, {} per direction ({})",
        pair.link.name,
        format::si(pair.link.bandwidth_bytes_per_s, "B/s"),
        source_text(&pair.link.source)
    );
    let mut view = PairView {
        a: pair.a.label.clone(),
        b: pair.b.label.clone(),
        link,
        missing: None,
        options: Vec::new(),
        verdict: String::new(),
        break_even: String::new(),
        measured_split: Vec::new(),
        training: Vec::new(),
        claims: Vec::new(),
    };
    let plan = match &pair.plan {
        Ok(p) => p,
        Err(e) => {
            view.missing = Some(e.clone());
            return view;
        }
    };
    view.options = plan
        .serving
        .options
        .iter()
        .map(|o| ServingRowView {
            placement: placement_text(&o.placement),
            prefill: timed(&o.prefill),
            transfer: if o.kv_transfer_bytes > 0.0 {
                format!(
                    "{} ({})",
                    format::duration(o.kv_transfer_s),
                    format::si(o.kv_transfer_bytes, "B")
                )
            } else {
                "—".into()
            },
            ttft: format::duration(o.ttft_s),
            decode: format!(
                "{} ({})",
                format::sig3(o.decode_tokens_per_s),
                o.first_decode_step.bound_by
            ),
            end_to_end: format::duration(o.end_to_end_s),
        })
        .collect();
    view.verdict = verdict(plan);
    view.break_even = break_even(plan);
    view.measured_split = measured_split(all);
    view.training = std::iter::once(&plan.tensor_training)
        .chain(plan.expert_training.as_ref())
        .map(|t| training_row(t, all))
        .collect();
    view.claims = claims(plan, all);
    view
}

fn split_option(plan: &PairPredictions) -> Option<&silirep_model::ServingOption> {
    plan.serving.options.iter().find(|o| {
        matches!(&o.placement, Placement::Split { prefill_on, .. } if *prefill_on == plan.split_prefill_on.label)
    })
}

fn alone_option<'a>(
    plan: &'a PairPredictions,
    machine: &str,
) -> Option<&'a silirep_model::ServingOption> {
    plan.serving
        .options
        .iter()
        .find(|o| matches!(&o.placement, Placement::Alone { machine: m } if m == machine))
}

/// Does prefilling on the faster prefiller and decoding on the other pay, and why.
fn verdict(plan: &PairPredictions) -> String {
    let (p, d) = (&plan.split_prefill_on.label, &plan.split_decode_on.label);
    let (Some(split), Some(alone_p), Some(alone_d)) = (
        split_option(plan),
        alone_option(plan, p),
        alone_option(plan, d),
    ) else {
        return String::new();
    };
    let best_alone = if alone_p.end_to_end_s <= alone_d.end_to_end_s {
        alone_p
    } else {
        alone_d
    };
    let best_name = placement_text(&best_alone.placement);
    let saving = best_alone.end_to_end_s - split.end_to_end_s;
    if saving > 0.0 {
        format!(
            "At the roofs the split (prefill on {p}, decode on {d}) pays: {} end to end against \
             {} for {best_name}, {} saved ({}) — {p}'s prefill is {} shorter and the KV cache \
             crosses the link in {}.",
            format::duration(split.end_to_end_s),
            format::duration(best_alone.end_to_end_s),
            format::duration(saving),
            format::percent(saving / best_alone.end_to_end_s),
            format::duration(alone_d.prefill.time_s - split.prefill.time_s),
            format::duration(split.kv_transfer_s)
        )
    } else {
        format!(
            "At the roofs the split (prefill on {p}, decode on {d}) does not pay: {} end to end \
             against {} for {best_name}; {}",
            format::duration(split.end_to_end_s),
            format::duration(best_alone.end_to_end_s),
            if best_alone.decode_time_s < split.decode_time_s {
                format!("{d} decodes slower than {p}, so nothing is gained by moving decode there.")
            } else {
                format!(
                    "the prefill saved ({}) is less than the transfer ({}).",
                    format::duration(alone_d.prefill.time_s - split.prefill.time_s),
                    format::duration(split.kv_transfer_s)
                )
            }
        )
    }
}

fn break_even(plan: &PairPredictions) -> String {
    let prompt = match plan.prompt_break_even {
        PromptBreakEven::FromOneToken => "from a one-token prompt on".to_string(),
        PromptBreakEven::From { prompt_tokens } => {
            format!("from a {prompt_tokens}-token prompt on")
        }
        PromptBreakEven::NotWithin { max_prompt_tokens } => {
            format!("for no prompt up to {max_prompt_tokens} tokens")
        }
    };
    let bandwidth = match plan.bandwidth_break_even {
        BandwidthBreakEven::Above {
            bandwidth_bytes_per_s,
            ..
        } => format!(
            "over any link faster than {} ({})",
            format::si(bandwidth_bytes_per_s, "B/s"),
            format::si(bandwidth_bytes_per_s * 8.0, "bit/s")
        ),
        BandwidthBreakEven::Never { shortfall_s } => format!(
            "over no link, however fast (it loses {} before any transfer)",
            format::duration(shortfall_s)
        ),
    };
    format!("On this link the split pays {prompt}; at this request it pays {bandwidth}.")
}

/// Each measured disaggregated run, phase by phase beside the plan's bounds: which phase
/// lost the time the roofs say the split could save.
fn measured_split(all: &ModelPredictions) -> Vec<String> {
    let mut out = Vec::new();
    for s in &all.measured_splits {
        let mut parts = Vec::new();
        let phase = |e: &Efficiency, what: &str| {
            format!(
                "{what} on {} took {} its bound ({} measured against {})",
                e.machine.label,
                format::ratio(1.0 / e.efficiency),
                rate(e.unit, e.measured),
                rate(e.unit, e.bound)
            )
        };
        if let Some(p) = &s.prefill {
            parts.push(phase(p, "prefill"));
        }
        if let Some(t) = &s.transfer {
            parts.push(format!(
                "moving the KV cache ({}, bytes from {}) took {}, {} the {} the link needs",
                format::si(t.bytes, "B"),
                t.bytes_from,
                format::duration(t.measured_s),
                format::ratio(t.times_link()),
                format::duration(t.link_s)
            ));
        }
        if let Some(d) = &s.decode {
            parts.push(phase(d, "decode"));
        }
        if let Some((measured, predicted)) = s.end_to_end {
            parts.push(format!(
                "end to end {} against the split's bound of {} ({})",
                format::duration(measured),
                format::duration(predicted),
                format::ratio(measured / predicted)
            ));
        }
        out.push(format!("{}: {}", s.file, parts.join("; ")));
    }
    out
}

fn bound_name(t: &TrainingSplit, b: SplitBound) -> String {
    match b {
        SplitBound::MachineA => t.machine_a.clone(),
        SplitBound::MachineB => t.machine_b.clone(),
        SplitBound::Link => "the link".into(),
    }
}

fn training_row(t: &TrainingSplit, all: &ModelPredictions) -> TrainingRowView {
    let strategy = match t.strategy {
        silirep_model::ParallelStrategy::Tensor => {
            format!("tensor parallel, {}", all.request.model.name)
        }
        silirep_model::ParallelStrategy::Expert if all.request.model.is_moe() => {
            format!("expert parallel, {}", all.request.model.name)
        }
        silirep_model::ParallelStrategy::Expert => "expert parallel, Mixtral-8x7B".to_string(),
    };
    TrainingRowView {
        strategy,
        share: format!(
            "{} {} / {} {}",
            t.machine_a,
            format::percent(t.fraction_a),
            t.machine_b,
            format::percent(1.0 - t.fraction_a)
        ),
        step: format::duration(t.step_time_s),
        alone: format!(
            "{} {} / {} {}",
            t.machine_a,
            format::duration(t.alone_a_s),
            t.machine_b,
            format::duration(t.alone_b_s)
        ),
        link_time: format!(
            "{} ({} of the step)",
            format::duration(t.link_time_s),
            format::percent(t.link_time_s / t.step_time_s)
        ),
        bound_by: bound_name(t, t.bound_by),
        speedup: format::ratio(t.speedup_over_faster_alone),
    }
}

/// The placement claims the numbers settle: which machine takes more experts, which is
/// relatively better at attention, and whether the link binds.
fn claims(plan: &PairPredictions, all: &ModelPredictions) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &plan.expert_training {
        let (more, share) = if e.fraction_a >= 0.5 {
            (&e.machine_a, e.fraction_a)
        } else {
            (&e.machine_b, 1.0 - e.fraction_a)
        };
        out.push(format!(
            "More experts go to {more}: the balanced expert-parallel split gives it {} of the \
             step's work, in proportion to how fast each machine runs a whole step alone \
             ({} {}, bound by {}; {} {}, bound by {}).",
            format::percent(share),
            e.machine_a,
            format::duration(e.alone_a_s),
            alone_bound(e, true),
            e.machine_b,
            format::duration(e.alone_b_s),
            alone_bound(e, false)
        ));
    }
    if let Some(b) = &all.blocks {
        out.push(attention_claim(b));
    }
    let link_binds: Vec<String> = std::iter::once(&plan.tensor_training)
        .chain(plan.expert_training.as_ref())
        .map(|t| {
            format!(
                "{} {} of its step",
                match t.strategy {
                    silirep_model::ParallelStrategy::Tensor => "tensor-parallel training",
                    silirep_model::ParallelStrategy::Expert => "expert-parallel training",
                },
                format::percent(t.link_time_s / t.step_time_s)
            )
        })
        .collect();
    let binding = std::iter::once(&plan.tensor_training)
        .chain(plan.expert_training.as_ref())
        .any(|t| t.bound_by == SplitBound::Link);
    let transfer = split_option(plan)
        .map(|s| {
            format!(
                "the KV cache {} of the split's end-to-end time",
                format::percent(s.kv_transfer_s / s.end_to_end_s)
            )
        })
        .unwrap_or_default();
    out.push(format!(
        "The link is not the bottleneck: {} — the link takes {}, {transfer}.",
        if binding {
            "does not hold for training, where the link binds a step"
        } else {
            "holds at the roofs"
        },
        link_binds.join(" and ")
    ));
    out
}

/// The roof that binds a whole step on one machine: the same roof binds its share, since a
/// share scales every FLOP and byte alike.
fn alone_bound(t: &TrainingSplit, a: bool) -> String {
    if a {
        t.compute_a.bound_by.to_string()
    } else {
        t.compute_b.bound_by.to_string()
    }
}

fn attention_claim(b: &BlockRates) -> String {
    let (a, bl) = (&b.a.label, &b.b.label);
    let relatively_better = if b.attention_b_over_a > b.ffn_b_over_a {
        bl
    } else {
        a
    };
    format!(
        "Attention-heavy layers go to {relatively_better}: measured, {bl} runs the attention block \
         at {} {a}'s rate ({} configurations) and the FFN block at {} ({} configurations), so \
         {relatively_better} is relatively better at attention (comparative advantage){}.",
        format::ratio(b.attention_b_over_a),
        b.attention_configurations,
        format::ratio(b.ffn_b_over_a),
        b.ffn_configurations,
        if (b.attention_b_over_a > 1.0) == (b.ffn_b_over_a > 1.0) {
            format!(
                ", though {} is faster at both",
                if b.ffn_b_over_a > 1.0 { bl } else { a }
            )
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::catalog::Catalog;
    use crate::analysis::predictions::{ConfiguredLink, ModelRequest, predict};
    use crate::ingest::{Dataset, MachineInfo, MachineKey, Record};
    use silirep_core::{BandwidthOp, Dtype, KernelSpec};

    fn key(label: &str) -> MachineKey {
        MachineKey::for_tests(label)
    }

    fn record(machine: &MachineKey, spec: KernelSpec, time_s: f64) -> Record {
        Record::for_tests(machine.clone(), spec, vec![time_s; 5])
    }

    /// A machine whose f16 GEMM reaches `flops` and whose triad streams `bandwidth`.
    fn machine(d: &mut Dataset, label: &str, flops: f64, bandwidth: f64) {
        let m = key(label);
        d.machines.insert(
            m.clone(),
            MachineInfo {
                label: label.into(),
                ..Default::default()
            },
        );
        let gemm = KernelSpec::Gemm {
            m: 4096,
            n: 4096,
            k: 4096,
            dtype: Dtype::F16,
        };
        let triad = KernelSpec::Bandwidth {
            op: BandwidthOp::Triad,
            array_bytes: 1 << 30,
            dtype: Dtype::F32,
        };
        let (gemm_s, triad_s) = (
            gemm.flops().unwrap() / flops,
            triad.bytes().unwrap() / bandwidth,
        );
        d.records.push(record(&m, gemm, gemm_s));
        d.records.push(record(&m, triad, triad_s));
    }

    fn view(d: &Dataset, link: Option<&ConfiguredLink>) -> ModelLevelView {
        let catalog = Catalog::built_in();
        let rooflines = crate::analysis::rooflines::rooflines(d, &catalog);
        let rates = crate::analysis::rates(d);
        model_level_view(&predict(
            d,
            &rates,
            &rooflines,
            &catalog,
            &ModelRequest::default(),
            link,
        ))
    }

    #[test]
    fn the_pair_verdict_names_the_split_and_why_it_pays() {
        // docs/model.md works this plan out by hand: 15.44 s against 16.56 s, 52 tokens.
        let mut d = Dataset::default();
        // The seed's roofs: a fast-compute, low-bandwidth prefiller and its opposite.
        machine(&mut d, "Prefiller", 13.8e12, 119e9);
        machine(&mut d, "Decoder", 6.08e12, 253e9);
        let link = ConfiguredLink {
            name: "bridge".into(),
            gbit_per_s: 37.6,
            source: "iperf3".into(),
        };
        let v = view(&d, Some(&link));
        let pair = v.pair.unwrap();
        assert_eq!(
            pair.link,
            "bridge, 4.70 GB/s per direction (measured: iperf3)"
        );
        assert!(
            pair.verdict.starts_with(
                "At the roofs the split (prefill on Prefiller, decode on Decoder) pays: 15.4 s \
                 end to end against 16.6 s for Decoder alone, 1.11 s saved (6.7%)"
            ),
            "{}",
            pair.verdict
        );
        assert!(pair.break_even.contains("from a 52-token prompt on"));
        assert_eq!(pair.options.len(), 4);
        assert!(pair.measured_split.is_empty());
        assert!(
            pair.claims
                .iter()
                .any(|c| c.starts_with("The link is not the bottleneck: holds"))
        );
    }

    #[test]
    fn a_missing_roof_is_said_not_guessed() {
        let mut d = Dataset::default();
        machine(&mut d, "Box", 1e12, 100e9);
        d.records
            .retain(|r| r.spec.family() != silirep_core::KernelFamily::Gemm);
        let v = view(&d, None);
        let m = &v.machines[0];
        assert!(
            m.missing
                .as_deref()
                .unwrap()
                .contains("has no compute roof for f16"),
            "{:?}",
            m.missing
        );
        assert_eq!(m.decode, "—");
        assert!(v.roofs.iter().any(|r| r.roof == "compute (f16)"
            && r.source == "not measured, and not in the datasheet catalog"));
        assert!(v.pair.is_none() && v.pair_missing.is_none());
    }
}
