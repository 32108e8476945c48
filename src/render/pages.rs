//! The report's pages: a view model of preformatted strings (numbers formatted only by
//! [`super::format`]) rendered through tera templates. Templates hold presentation only; the
//! built-in ones are compiled into the binary and `--templates DIR` overrides them by name.

use super::charts::{ChartSpec, NamedChart};
use super::format;
use crate::analysis::compare::ComparisonRow;
use crate::analysis::verdicts::PairVerdicts;
use crate::analysis::{Analysis, RateEstimate, RateUnit};
use crate::ingest::{Dataset, MachineKey};
use anyhow::{Context, Result};
use serde::Serialize;
use silirep_analysis::Bound;
use std::collections::BTreeSet;
use std::path::Path;

/// `index.*` render one analysis, `analyses.*` the page that lists several, `machine.md` one
/// machine.
pub const TEMPLATE_NAMES: [&str; 5] = [
    "index.md.tera",
    "machine.md.tera",
    "index.html.tera",
    "analyses.md.tera",
    "analyses.html.tera",
];

fn built_in(name: &str) -> &'static str {
    match name {
        "index.md.tera" => include_str!("../../templates/index.md.tera"),
        "machine.md.tera" => include_str!("../../templates/machine.md.tera"),
        "index.html.tera" => include_str!("../../templates/index.html.tera"),
        "analyses.md.tera" => include_str!("../../templates/analyses.md.tera"),
        "analyses.html.tera" => include_str!("../../templates/analyses.html.tera"),
        _ => "",
    }
}

pub fn load_templates(override_dir: Option<&Path>) -> Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    for name in TEMPLATE_NAMES {
        let text = match override_dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
            Some(path) => std::fs::read_to_string(&path)
                .with_context(|| format!("reading template {}", path.display()))?,
            None => built_in(name).to_string(),
        };
        tera.add_raw_template(name, &text)
            .map_err(|e| anyhow::anyhow!("template {name}: {}", tera_error_chain(&e)))?;
    }
    // Escape everything taken from data: HTML by tera's autoescape, Markdown by the `md`
    // filter the Markdown templates apply to every value (views hold plain text).
    tera.register_filter("md", markdown_filter);
    tera.autoescape_on(vec![".html.tera"]);
    Ok(tera)
}

/// `{{ value | md }}`: the value as Markdown text that cannot change the page's structure.
fn markdown_filter(
    value: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(tera::Value::String(format::markdown_text(&text)))
}

fn tera_error_chain(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub fn render(tera: &tera::Tera, name: &str, view: &impl Serialize) -> Result<String> {
    let context = tera::Context::from_serialize(view).context("building template context")?;
    tera.render(name, &context)
        .map_err(|e| anyhow::anyhow!("rendering {name}: {}", tera_error_chain(&e)))
}

// ----------------------------------------------------------------------------------------
// View model

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

#[derive(Serialize, Clone)]
pub struct MachineView {
    pub label: String,
    pub id: String,
    pub page: String,
    pub frameworks: String,
    pub measurements: usize,
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
pub struct RooflineView {
    pub machine: String,
    pub machine_id: String,
    pub precision: String,
    pub compute: String,
    pub compute_source: String,
    pub memory: String,
    pub memory_source: String,
    pub ridge: String,
    pub datasheet: String,
    pub mfu: String,
    pub mbu: String,
    pub points: Vec<RoofPointView>,
}

#[derive(Serialize, Clone)]
pub struct RoofPointView {
    pub kernel: String,
    pub params: String,
    pub framework: String,
    pub intensity: String,
    pub achieved: String,
    pub bound: String,
    pub fraction: String,
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

#[derive(Serialize)]
pub struct MachinePageView {
    pub machine: MachineView,
    pub rooflines: Vec<RooflineView>,
    pub measurements: Vec<MeasurementView>,
    /// Whether any measurement recorded its accelerator clock (adds a column).
    pub has_clock: bool,
}

#[derive(Serialize)]
pub struct MeasurementView {
    pub kernel: String,
    pub precision: String,
    pub params: String,
    pub framework: String,
    pub rate: String,
    pub time: String,
    pub n: String,
    pub status: String,
    /// The accelerator clock while timed, and what limited it; "—" where not recorded.
    pub clock: String,
    pub source: String,
}

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
fn decode_scope(spec: &silirep_core::KernelSpec, rate: &RateEstimate, text: String) -> String {
    match format::decode_scope(spec, rate.value) {
        Some(scope) => format!("{text} {scope}"),
        None => text,
    }
}

/// Whether every voting row (no caveats) names `winner` with a CI that excludes 1: then the
/// direction is certain even when the geometric mean's CI across workloads is wide.
fn unanimous(c: &crate::analysis::verdicts::CategoryVerdict, winner: &str) -> bool {
    let mut voting = c.rows.iter().filter(|r| r.caveats.is_empty()).peekable();
    voting.peek().is_some() && voting.all(|r| r.winner == winner && r.significant == Some(true))
}

/// A category's answer in one sentence: who is faster across its workloads, by how much, and
/// how sure the data lets us be (or why it lets us say no more).
fn overall_text(c: &crate::analysis::verdicts::CategoryVerdict) -> String {
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
                Some(silirep_analysis::NoCi::TooSpread { lower, upper }) => format!(
                    "the workloads disagree too widely for one (it would span {} – {})",
                    format::ratio(lower),
                    format::ratio(upper)
                ),
                _ => format!(
                    "{n} workloads are too few for one (a CI needs at least {})",
                    silirep_analysis::MIN_WORKLOADS_FOR_CI
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
fn excluded_note(excluded: usize) -> String {
    match excluded {
        0 => String::new(),
        1 => "; the row marked suspect is left out of the mean".into(),
        n => format!("; the {n} rows marked suspect are left out of the mean"),
    }
}

fn ratio_text(s: &silirep_analysis::RatioEstimate) -> String {
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

fn verdict_text(a: &str, b: &str, s: &silirep_analysis::RatioEstimate) -> String {
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

fn bound_text(b: Option<Bound>) -> &'static str {
    match b {
        Some(Bound::Compute) => "compute",
        Some(Bound::Memory) => "memory",
        None => "not placed",
    }
}

fn machine_views(dataset: &Dataset, root_prefix: &str) -> Vec<MachineView> {
    dataset
        .machines
        .keys()
        .map(|key| {
            let records: Vec<_> = dataset
                .records
                .iter()
                .filter(|r| &r.machine == key)
                .collect();
            let frameworks: BTreeSet<&str> = records.iter().map(|r| r.framework.as_str()).collect();
            MachineView {
                label: key.label.clone(),
                id: key.id.clone(),
                page: format!("{root_prefix}machines/{}.md", machine_file_stem(key)),
                frameworks: frameworks.into_iter().collect::<Vec<_>>().join(", "),
                measurements: records.len(),
            }
        })
        .collect()
}

pub fn machine_file_stem(key: &MachineKey) -> String {
    crate::util::slug(&key.id)
}

fn verdict_views(verdicts: &[PairVerdicts]) -> Vec<VerdictPairView> {
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
        if r.error.is_some() || r.verification == "failed" {
            continue;
        }
        let key = (
            &r.machine,
            r.spec.family(),
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

/// `gemm m=… (cpu)`, and why the sweep set it where it did.
fn ceiling_source(c: &crate::analysis::roofline::Ceiling) -> String {
    let source = format!("{} {} ({})", c.kernel, c.params, c.framework);
    match &c.note {
        Some(note) => format!("{source}; {note}"),
        None => source,
    }
}

fn roofline_views(analysis: &Analysis) -> Vec<RooflineView> {
    analysis
        .rooflines
        .iter()
        .map(|r| RooflineView {
            machine: r.machine.label.clone(),
            machine_id: r.machine.id.clone(),
            precision: r.precision.clone(),
            compute: format::si(r.compute.value, "FLOP/s"),
            compute_source: ceiling_source(&r.compute),
            memory: format::si(r.memory.value, "B/s"),
            memory_source: ceiling_source(&r.memory),
            ridge: format!("{} FLOP/byte", format::sig3(r.ridge_flops_per_byte)),
            datasheet: r
                .datasheet
                .as_ref()
                .map(|d| format!("{} — {}", d.name, d.source))
                .unwrap_or_else(|| "not in catalog".into()),
            mfu: r
                .mfu
                .map(|m| format!("{:.1}%", m * 100.0))
                .unwrap_or_else(|| "—".into()),
            mbu: r
                .mbu
                .map(|m| format!("{:.1}%", m * 100.0))
                .unwrap_or_else(|| "—".into()),
            points: r
                .points
                .iter()
                .map(|p| RoofPointView {
                    kernel: p.kernel.to_string(),
                    params: p.params.to_string(),
                    framework: p.framework.to_string(),
                    intensity: format::sig3(p.intensity_flops_per_byte),
                    achieved: p
                        .achieved_flops_per_s
                        .map(|a| format::si(a, "FLOP/s"))
                        .unwrap_or_else(|| "— (work unknown)".into()),
                    bound: bound_text(Some(p.bound)).to_string(),
                    fraction: match (p.roof_fraction, &p.above_roof) {
                        (Some(f), Some(why)) => format!("{:.0}% ({why})", f * 100.0),
                        (Some(f), None) => format!("{:.0}%", f * 100.0),
                        (None, _) => "—".into(),
                    },
                })
                .collect(),
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
                    family: f.family.clone(),
                    rows: f.rows,
                    geomean: match (f.geomean.lower, f.geomean.upper, f.geomean.no_ci) {
                        (Some(lo), Some(hi), _) => format!(
                            "{} [{} – {}]",
                            format::ratio(f.geomean.value),
                            format::ratio(lo),
                            format::ratio(hi)
                        ),
                        (_, _, Some(silirep_analysis::NoCi::TooSpread { .. })) => format!(
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
            .filter(|r| r.key.family == "gemm")
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
                    .filter(|r| r.key.family == "gemm" && r.key.precision == precision)
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
        rooflines: roofline_views(analysis),
        charts: charts
            .iter()
            .map(|(c, svg)| ChartView {
                title: c.title.clone(),
                png: format!("charts/{}.png", c.stem),
                svg: format!("charts/{}.svg", c.stem),
                svg_inline: svg.clone(),
                kind: match c.spec {
                    ChartSpec::Roofline(_) => "roofline".into(),
                    ChartSpec::Line(_) => "line".into(),
                },
            })
            .collect(),
        inventory_md,
    }
}

pub fn machine_page_view(
    dataset: &Dataset,
    analysis: &Analysis,
    key: &MachineKey,
) -> MachinePageView {
    let machine = machine_views(dataset, "../")
        .into_iter()
        .find(|m| m.id == key.id && m.label == key.label)
        .unwrap_or(MachineView {
            label: key.label.clone(),
            id: key.id.clone(),
            page: String::new(),
            frameworks: String::new(),
            measurements: 0,
        });
    let rooflines = roofline_views(analysis)
        .into_iter()
        .filter(|r| r.machine_id == key.id && r.machine == key.label)
        .collect();
    let mut records: Vec<_> = dataset
        .records
        .iter()
        .zip(&analysis.rates)
        .filter(|(r, _)| &r.machine == key)
        .collect();
    records.sort_by(|(x, _), (y, _)| {
        (
            x.spec.family(),
            x.spec.name(),
            x.spec.precision_label(),
            x.spec.primary_size(),
            &x.framework,
            &x.source,
        )
            .cmp(&(
                y.spec.family(),
                y.spec.name(),
                y.spec.precision_label(),
                y.spec.primary_size(),
                &y.framework,
                &y.source,
            ))
    });
    let measurements = records
        .into_iter()
        .map(|(r, rate)| MeasurementView {
            kernel: r.spec.name().to_string(),
            precision: r.spec.precision_label().to_string(),
            params: r.spec.params_label().to_string(),
            framework: r.framework.to_string(),
            rate: rate
                .as_ref()
                .map(|rate| decode_scope(&r.spec, rate, rate_text(rate)))
                .unwrap_or_else(|| "—".into()),
            time: r
                .timing
                .as_ref()
                .map(|t| format!("{} ({})", format::duration(t.center_s()), t.center_method()))
                .unwrap_or_else(|| "—".into()),
            n: r.timing
                .as_ref()
                .map(|t| t.n().to_string())
                .unwrap_or_else(|| "0".into()),
            status: match &r.error {
                Some(e) => format!("failed: {e}"),
                None if r.verification == "passed" => "verified".into(),
                None if r.verification == "not_reported" => "not verified by source".into(),
                None => r.verification.clone(),
            }
            .to_string(),
            clock: r.clock.as_deref().unwrap_or("—").to_string(),
            source: format!("{} {}", r.source.file, r.source.json_path),
        })
        .collect::<Vec<_>>();
    MachinePageView {
        has_clock: measurements.iter().any(|m| m.clock != "—"),
        machine,
        rooflines,
        measurements,
    }
}

// ----------------------------------------------------------------------------------------
// The page listing several analyses

#[derive(Serialize)]
pub struct AnalysesIndexView {
    pub generated: Option<String>,
    /// The analyses file, when one chose the analyses.
    pub config: Option<String>,
    pub machine_count: usize,
    pub measurement_count: usize,
    pub file_count: usize,
    pub warning_count: usize,
    pub analyses: Vec<AnalysisLinkView>,
    pub machines: Vec<IndexMachineView>,
    pub inventory_md: String,
}

#[derive(Serialize)]
pub struct AnalysisLinkView {
    pub title: String,
    pub question: String,
    pub page: String,
    pub page_html: String,
    pub machines: String,
    /// The analysis's answer in a line or two: its verdicts, else its rooflines.
    pub headlines: Vec<String>,
}

#[derive(Serialize)]
pub struct IndexMachineView {
    pub label: String,
    pub id: String,
    pub page: String,
    pub class: String,
    pub measurements: usize,
    pub analyses: String,
}

/// One analysis as the index shows it; `folder` is where its pages are, relative to the index.
pub fn analysis_link_view(
    set: &crate::analysis::report_sets::ReportSet,
    analysis: &Analysis,
) -> AnalysisLinkView {
    let verdicts = verdict_views(&analysis.verdicts);
    let several_pairs = verdicts.len() > 1;
    let mut headlines: Vec<String> = verdicts
        .iter()
        .flat_map(|pair| {
            pair.categories.iter().map(move |c| {
                if several_pairs {
                    format!("{} vs {}, {}: {}.", pair.a, pair.b, c.title, c.overall)
                } else {
                    format!("{}: {}.", c.title, c.overall)
                }
            })
        })
        .collect();
    if headlines.is_empty() {
        headlines = roofline_views(analysis)
            .into_iter()
            .map(|r| {
                format!(
                    "{}, {}: compute ceiling {}, memory ceiling {}, ridge point {}.",
                    r.machine, r.precision, r.compute, r.memory, r.ridge
                )
            })
            .collect();
    }
    AnalysisLinkView {
        title: set.title.clone(),
        question: set.question.clone(),
        page: format!("{}/index.md", set.slug),
        page_html: format!("{}/index.html", set.slug),
        machines: set
            .machines
            .iter()
            .map(|k| k.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        headlines,
    }
}

pub fn analyses_index_view(
    dataset: &Dataset,
    chosen: &crate::analysis::report_sets::Chosen,
    analyses: Vec<AnalysisLinkView>,
    config: Option<String>,
    inventory_md: String,
    generated: Option<String>,
) -> AnalysesIndexView {
    let machines = machine_views(dataset, "")
        .into_iter()
        .zip(dataset.machines.iter())
        .map(|(view, (key, info))| {
            let in_sets: Vec<&str> = chosen
                .sets
                .iter()
                .filter(|s| s.machines.contains(key))
                .map(|s| s.title.as_str())
                .collect();
            IndexMachineView {
                class: crate::analysis::report_sets::machine_class(key, Some(info)),
                analyses: if in_sets.is_empty() {
                    "none (not selected by any analysis)".into()
                } else {
                    in_sets.join("; ")
                },
                label: view.label,
                id: view.id,
                page: view.page,
                measurements: view.measurements,
            }
        })
        .collect();
    AnalysesIndexView {
        generated,
        config,
        machine_count: dataset.machines.len(),
        measurement_count: dataset.records.len(),
        file_count: dataset.files.len(),
        warning_count: dataset.warnings.len(),
        analyses,
        machines,
        inventory_md,
    }
}
