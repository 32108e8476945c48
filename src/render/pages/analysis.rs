//! The page of one analysis: headline figures, "which machine for what" verdicts,
//! rooflines, GEMM tables by size, charts, every comparison.

use super::text::{bound_text, excluded_note, overall_text, rate_text, ratio_text, verdict_text};
use super::{MachineView, RooflineView, machine_views, roofline_views};
use crate::analysis::compare::ComparisonRow;
use crate::analysis::verdicts::PairVerdicts;
use crate::analysis::{Analysis, RateEstimate};
use crate::ingest::{Dataset, MachineKey, Verification};
use crate::render::charts::{ChartSection, NamedChart};
use crate::util::format;
use serde::Serialize;
use std::collections::BTreeSet;

/// Where one analysis page sits: its words, and its links to the pages around it.
pub struct AnalysisPlace<'a> {
    pub title: &'a str,
    pub question: &'a str,
    /// From this page to the folder holding `machines/` (`""` or `"../"`).
    pub root_prefix: &'a str,
    /// The page listing every analysis, when this one is one of several.
    pub index_link: Option<String>,
}

#[derive(Serialize)]
pub struct ReportView {
    pub title: String,
    pub question: String,
    pub index_link: Option<String>,
    /// The inventory: on this page, or on the index when the report holds several analyses.
    pub inventory_link: String,
    pub machine_count: usize,
    pub measurement_count: usize,
    pub file_count: usize,
    pub warning_count: usize,
    /// From `SOURCE_DATE_EPOCH` when set; otherwise reports carry no date.
    pub generated: Option<String>,
    pub machines: Vec<MachineView>,
    /// Each machine's best rate per workload and precision: the first screen for one machine.
    pub headlines: Vec<HeadlineView>,
    pub verdicts: Vec<VerdictPairView>,
    pub gemm_tables: Vec<GemmTableView>,
    pub comparisons: Vec<ComparisonView>,
    pub rooflines: Vec<RooflineView>,
    pub charts: Vec<ChartView>,
    pub inventory_md: String,
    /// The "Model-level predictions" section, set by the report for each analysis.
    pub model_level: Option<super::predictions::ModelLevelView>,
    /// The "Interconnect" and "Traffic captures" sections, set by the report where there
    /// is something to show.
    pub interconnect: Option<super::interconnect::InterconnectView>,
}

#[derive(Serialize)]
pub struct HeadlineView {
    pub machine: String,
    pub workload: String,
    pub precision: String,
    pub rate: String,
    pub params: String,
    pub framework: String,
}

#[derive(Serialize)]
pub struct VerdictPairView {
    pub a: String,
    pub b: String,
    pub categories: Vec<CategoryView>,
}

#[derive(Serialize)]
pub struct CategoryView {
    pub title: String,
    pub overall: String,
    pub rows: Vec<VerdictRowView>,
}

#[derive(Serialize)]
pub struct VerdictRowView {
    pub workload: String,
    pub params: String,
    pub precision: String,
    pub framework: String,
    pub result: String,
    pub bottleneck: String,
}

#[derive(Serialize)]
pub struct GemmTableView {
    pub a: String,
    pub b: String,
    pub precision: String,
    pub rows: Vec<GemmRowView>,
}

#[derive(Serialize)]
pub struct GemmRowView {
    pub size: u64,
    pub framework: String,
    pub script: String,
    pub a: String,
    pub b: String,
    pub ratio: String,
    pub verdict: String,
}

#[derive(Serialize)]
pub struct ComparisonView {
    pub a: String,
    pub b: String,
    pub families: Vec<FamilyView>,
    pub rows: Vec<ComparisonRowView>,
}

#[derive(Serialize)]
pub struct FamilyView {
    pub family: String,
    pub rows: usize,
    pub geomean: String,
}

#[derive(Serialize)]
pub struct ComparisonRowView {
    pub kernel: String,
    pub precision: String,
    pub params: String,
    pub framework: String,
    pub a: String,
    pub b: String,
    pub ratio: String,
    pub verdict: String,
    pub source: String,
}

#[derive(Serialize, Clone)]
pub struct ChartView {
    pub title: String,
    pub png: String,
    pub svg: String,
    /// The SVG itself, inlined into the HTML page (produced by silirep-charts, which escapes
    /// every label it draws).
    pub svg_inline: String,
    pub kind: String,
}

pub(super) fn verdict_views(verdicts: &[PairVerdicts]) -> Vec<VerdictPairView> {
    verdicts
        .iter()
        .map(|p| VerdictPairView {
            a: p.a.label.clone(),
            b: p.b.label.clone(),
            categories: p
                .categories
                .iter()
                .map(|c| CategoryView {
                    title: c.category.title().to_string(),
                    overall: overall_text(c) + &excluded_note(c.rows.len() - c.voting_rows),
                    rows: c
                        .rows
                        .iter()
                        .map(|r| {
                            let ci = match (r.lower, r.upper) {
                                (Some(lo), Some(hi)) => {
                                    format!(" [{} – {}]", format::ratio(lo), format::ratio(hi))
                                }
                                _ => " (no CI)".into(),
                            };
                            let mut result = if r.significant == Some(false) {
                                format!(
                                    "no significant difference ({} {}{ci})",
                                    r.winner,
                                    format::ratio(r.factor)
                                )
                            } else {
                                format!("{} {}{ci}", r.winner, format::ratio(r.factor))
                            };
                            for caveat in &r.caveats {
                                result.push_str(&format!(" — {caveat}"));
                            }
                            VerdictRowView {
                                workload: r.workload.to_string(),
                                params: r.params.to_string(),
                                precision: r.precision.to_string(),
                                framework: r.framework.to_string(),
                                result: result.to_string(),
                                bottleneck: format!(
                                    "{}: {} / {}: {}",
                                    p.a.label,
                                    bound_text(r.bound_a),
                                    p.b.label,
                                    bound_text(r.bound_b)
                                ),
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

fn comparison_row_view(a: &str, b: &str, r: &ComparisonRow) -> ComparisonRowView {
    ComparisonRowView {
        kernel: r.key.kernel.to_string(),
        precision: r.key.precision.to_string(),
        params: r.key.params.to_string(),
        framework: r.key.framework.to_string(),
        a: rate_text(&r.a.rate),
        b: rate_text(&r.b.rate),
        ratio: ratio_text(&r.speedup),
        verdict: {
            let mut v = verdict_text(a, b, &r.speedup);
            for caveat in &r.caveats {
                v.push_str(&format!(" — {caveat}"));
            }
            v
        },
        source: if r.key.script.is_empty() {
            "silirep runs".to_string()
        } else {
            r.key.script.clone()
        }
        .to_string(),
    }
}

/// The best rate each machine reached per workload and precision (ties: the first in load
/// order), with the configuration that reached it.
fn headline_views(dataset: &Dataset, analysis: &Analysis) -> Vec<HeadlineView> {
    type Key<'a> = (&'a MachineKey, &'static str, String, String);
    let mut best: std::collections::BTreeMap<Key, (&crate::ingest::Record, &RateEstimate)> =
        std::collections::BTreeMap::new();
    for (r, rate) in dataset.records.iter().zip(&analysis.rates) {
        let Some(rate) = rate else { continue };
        if r.error.is_some() || r.verification == Verification::Failed {
            continue;
        }
        let key = (
            &r.machine,
            r.spec.family().name(),
            r.spec.name(),
            r.spec.precision_label(),
        );
        if best.get(&key).is_none_or(|(_, b)| rate.value > b.value) {
            best.insert(key, (r, rate));
        }
    }
    best.into_iter()
        .map(|((machine, _, name, precision), (r, rate))| HeadlineView {
            machine: machine.label.clone(),
            workload: name,
            precision,
            rate: rate_text(rate),
            params: r.spec.params_label(),
            framework: r.framework.clone(),
        })
        .collect()
}

pub fn report_view(
    dataset: &Dataset,
    analysis: &Analysis,
    charts: &[(NamedChart, String)],
    inventory_md: String,
    generated: Option<String>,
    place: &AnalysisPlace,
) -> ReportView {
    let comparisons: Vec<ComparisonView> = analysis
        .comparisons
        .iter()
        .map(|c| ComparisonView {
            a: c.a.label.clone(),
            b: c.b.label.clone(),
            families: c
                .families
                .iter()
                .map(|f| FamilyView {
                    family: f.family.name().to_string(),
                    rows: f.rows,
                    geomean: match (f.geomean.lower, f.geomean.upper, f.geomean.no_ci) {
                        (Some(lo), Some(hi), _) => format!(
                            "{} [{} – {}]",
                            format::ratio(f.geomean.value),
                            format::ratio(lo),
                            format::ratio(hi)
                        ),
                        (_, _, Some(silirep_stats::NoCi::TooSpread { .. })) => format!(
                            "{} (from {} to {}; too spread for a CI)",
                            format::ratio(f.geomean.value),
                            format::ratio(f.geomean.range.0),
                            format::ratio(f.geomean.range.1)
                        ),
                        _ if f.rows >= 2 => format!(
                            "{} (from {} to {}; too few for a CI)",
                            format::ratio(f.geomean.value),
                            format::ratio(f.geomean.range.0),
                            format::ratio(f.geomean.range.1)
                        ),
                        _ => format::ratio(f.geomean.value),
                    },
                })
                .collect(),
            rows: c
                .rows
                .iter()
                .map(|r| comparison_row_view(&c.a.label, &c.b.label, r))
                .collect(),
        })
        .collect();
    let mut gemm_tables = Vec::new();
    for c in &analysis.comparisons {
        let precisions: BTreeSet<&str> = c
            .rows
            .iter()
            .filter(|r| r.key.family == silirep_core::KernelFamily::Gemm)
            .map(|r| r.key.precision.as_str())
            .collect();
        for precision in precisions {
            gemm_tables.push(GemmTableView {
                a: c.a.label.clone(),
                b: c.b.label.clone(),
                precision: precision.to_string(),
                rows: c
                    .rows
                    .iter()
                    .filter(|r| {
                        r.key.family == silirep_core::KernelFamily::Gemm
                            && r.key.precision == precision
                    })
                    .map(|r| {
                        let v = comparison_row_view(&c.a.label, &c.b.label, r);
                        GemmRowView {
                            size: r.key.primary_size,
                            framework: v.framework,
                            script: v.source,
                            a: v.a,
                            b: v.b,
                            ratio: v.ratio,
                            verdict: v.verdict,
                        }
                    })
                    .collect(),
            });
        }
    }
    ReportView {
        title: place.title.to_string(),
        question: place.question.to_string(),
        inventory_link: match &place.index_link {
            Some(index) => format!("{index}#inventory"),
            None => "#inventory".into(),
        },
        index_link: place.index_link.clone(),
        machine_count: dataset.machines.len(),
        measurement_count: dataset.records.len(),
        file_count: dataset.files.len(),
        warning_count: dataset.warnings.len(),
        generated,
        machines: machine_views(dataset, place.root_prefix),
        headlines: headline_views(dataset, analysis),
        verdicts: verdict_views(&analysis.verdicts),
        gemm_tables,
        comparisons,
        rooflines: roofline_views(&analysis.rooflines),
        charts: charts
            .iter()
            .map(|(c, svg)| ChartView {
                title: c.title.clone(),
                png: format!("charts/{}.png", c.stem),
                svg: format!("charts/{}.svg", c.stem),
                svg_inline: svg.clone(),
                kind: match c.section {
                    ChartSection::Roofline => "roofline".into(),
                    ChartSection::Kernels => "line".into(),
                    ChartSection::Interconnect => "interconnect".into(),
                    ChartSection::Captures => "capture".into(),
                },
            })
            .collect(),
        inventory_md,
        model_level: None,
        interconnect: None,
    }
}
