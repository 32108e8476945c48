//! How numbers and verdicts read on every page: rates with their CI, ratios, who is faster
//! and by how much, and what the data lets us say when it cannot say more.

use crate::analysis::{RateEstimate, RateUnit};
use crate::util::format;
use silirep_model::Bound;

pub fn rate_text(rate: &RateEstimate) -> String {
    let unit = rate.unit.symbol();
    let value = match rate.unit {
        RateUnit::TokenPerS => format!("{} {unit}", format::sig3(rate.value)),
        _ => format::si(rate.value, unit),
    };
    match (rate.lower, rate.upper) {
        (Some(lo), Some(hi)) => {
            let (lo, hi) = match rate.unit {
                RateUnit::TokenPerS => (format::sig3(lo), format::sig3(hi)),
                _ => (format::si(lo, unit), format::si(hi, unit)),
            };
            format!("{value} [{lo} – {hi}]")
        }
        _ => format!("{value} (n={}, no CI)", rate.n),
    }
}

/// A decode through part of the model (the CPU's one layer) says so, with the whole model's
/// tokens/s beside it.
pub(super) fn decode_scope(
    spec: &silirep_core::KernelSpec,
    rate: &RateEstimate,
    text: String,
) -> String {
    match format::decode_scope(spec, rate.value) {
        Some(scope) => format!("{text} {scope}"),
        None => text,
    }
}

/// Whether every voting row (no caveats) names `winner` with a CI that excludes 1: then the
/// direction is certain even when the geometric mean's CI across workloads is wide.
pub(super) fn unanimous(c: &crate::analysis::verdicts::CategoryVerdict, winner: &str) -> bool {
    let mut voting = c.rows.iter().filter(|r| r.caveats.is_empty()).peekable();
    voting.peek().is_some() && voting.all(|r| r.winner == winner && r.significant == Some(true))
}

/// A category's answer in one sentence: who is faster across its workloads, by how much, and
/// how sure the data lets us be (or why it lets us say no more).
pub(super) fn overall_text(c: &crate::analysis::verdicts::CategoryVerdict) -> String {
    let (Some(w), Some(f)) = (&c.overall_winner, c.overall_factor) else {
        return "—".into();
    };
    let n = c.voting_rows;
    match (c.overall_lower, c.overall_upper) {
        (Some(lo), Some(hi)) if lo <= 1.0 && hi >= 1.0 && unanimous(c, w) => format!(
            "{w} is faster in every one of the {n} workloads, each significantly; by how much varies too widely between them for a CI on the mean (geometric mean {}, 95% CI {} – {})",
            format::ratio(f),
            format::ratio(lo),
            format::ratio(hi)
        ),
        (Some(lo), Some(hi)) if lo <= 1.0 && hi >= 1.0 => format!(
            "no significant difference (geometric mean {} for {w} over {n} workloads, 95% CI {} – {})",
            format::ratio(f),
            format::ratio(lo),
            format::ratio(hi)
        ),
        (Some(lo), Some(hi)) => format!(
            "{w} is {} faster (geometric mean over {n} workloads, 95% CI {} – {})",
            format::ratio(f),
            format::ratio(lo),
            format::ratio(hi)
        ),
        _ if n == 1 => format!("{w} is {} faster (one workload, no CI)", format::ratio(f)),
        _ => {
            let range = c
                .overall_range
                .map(|(lo, hi)| format!("from {} to {}", format::ratio(lo), format::ratio(hi)))
                .unwrap_or_default();
            let why = match c.overall_no_ci {
                Some(silirep_stats::NoCi::TooSpread { lower, upper }) => format!(
                    "the workloads disagree too widely for one (it would span {} – {})",
                    format::ratio(lower),
                    format::ratio(upper)
                ),
                _ => format!(
                    "{n} workloads are too few for one (a CI needs at least {})",
                    silirep_stats::MIN_WORKLOADS_FOR_CI
                ),
            };
            if unanimous(c, w) {
                format!(
                    "{w} is faster in every one of the {n} workloads, each significantly, {range} (geometric mean {}); no CI on the mean: {why}",
                    format::ratio(f)
                )
            } else {
                format!(
                    "{w} is {} faster on geometric mean over {n} workloads, {range}; no CI on the mean: {why}",
                    format::ratio(f)
                )
            }
        }
    }
}

/// Says how many rows the category's geometric mean leaves out because their data is suspect.
pub(super) fn excluded_note(excluded: usize) -> String {
    match excluded {
        0 => String::new(),
        1 => "; the row marked suspect is left out of the mean".into(),
        n => format!("; the {n} rows marked suspect are left out of the mean"),
    }
}

pub(super) fn ratio_text(s: &silirep_stats::RatioEstimate) -> String {
    match (s.lower, s.upper) {
        (Some(lo), Some(hi)) => format!(
            "{} [{} – {}]",
            format::ratio(s.ratio),
            format::ratio(lo),
            format::ratio(hi)
        ),
        _ => format!("{} (no CI)", format::ratio(s.ratio)),
    }
}

pub(super) fn verdict_text(a: &str, b: &str, s: &silirep_stats::RatioEstimate) -> String {
    match s.significant {
        Some(false) => "no significant difference".into(),
        _ => {
            let (winner, factor) = if s.ratio >= 1.0 {
                (a, s.ratio)
            } else {
                (b, 1.0 / s.ratio)
            };
            let qualifier = if s.significant.is_none() {
                " (n=1, no CI)"
            } else {
                ""
            };
            format!("{winner} {} faster{qualifier}", format::ratio(factor))
        }
    }
}

pub(super) fn bound_text(b: Option<Bound>) -> &'static str {
    match b {
        Some(Bound::Compute) => "compute",
        Some(Bound::Memory) => "memory",
        None => "not placed",
    }
}

/// `gemm m=… (cpu)`, and why the sweep set it where it did.
pub(super) fn ceiling_source(c: &crate::analysis::rooflines::Ceiling) -> String {
    let source = format!("{} {} ({})", c.kernel, c.params, c.framework);
    match &c.note {
        Some(note) => format!("{source}; {note}"),
        None => source,
    }
}
