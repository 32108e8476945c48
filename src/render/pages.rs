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

pub const TEMPLATE_NAMES: [&str; 3] = ["index.md.tera", "machine.md.tera", "index.html.tera"];

fn built_in(name: &str) -> &'static str {
    match name {
        "index.md.tera" => include_str!("../../templates/index.md.tera"),
        "machine.md.tera" => include_str!("../../templates/machine.md.tera"),
        "index.html.tera" => include_str!("../../templates/index.html.tera"),
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
    // Escape everything taken from data in HTML; Markdown is escaped per cell by the view.
    tera.autoescape_on(vec![".html.tera"]);
    Ok(tera)
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

#[derive(Serialize)]
pub struct ReportView {
    pub machine_count: usize,
    pub measurement_count: usize,
    pub file_count: usize,
    pub warning_count: usize,
    /// From `SOURCE_DATE_EPOCH` when set; otherwise reports carry no date.
    pub generated: Option<String>,
    pub machines: Vec<MachineView>,
    pub verdicts: Vec<VerdictPairView>,
    pub gemm_tables: Vec<GemmTableView>,
    pub comparisons: Vec<ComparisonView>,
    pub rooflines: Vec<RooflineView>,
    pub charts: Vec<ChartView>,
    pub inventory_md: String,
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
    pub sweep_fit: String,
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

/// Markdown table cell: pipes escaped, newlines flattened.
fn cell(text: &str) -> String {
    super::inventory::cell(text)
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

fn machine_views(dataset: &Dataset) -> Vec<MachineView> {
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
                page: format!("machines/{}.md", machine_file_stem(key)),
                frameworks: frameworks.into_iter().collect::<Vec<_>>().join(", "),
                measurements: records.len(),
            }
        })
        .collect()
}

pub fn machine_file_stem(key: &MachineKey) -> String {
    crate::ingest::mac_ml_benchmark::slug(&key.id)
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
                    overall: match (&c.overall_winner, c.overall_factor) {
                        (Some(w), Some(f)) => match (c.overall_lower, c.overall_upper) {
                            (Some(lo), Some(hi))
                                if lo <= 1.0 && hi >= 1.0 && unanimous(c, w) =>
                            {
                                format!(
                                    "{w} is faster in every one of the {} workloads, each significantly; by how much varies too widely between them for a CI on the mean (geometric mean {}, 95% CI {} – {})",
                                    c.voting_rows,
                                    format::ratio(f),
                                    format::ratio(lo),
                                    format::ratio(hi)
                                )
                            }
                            (Some(lo), Some(hi)) if lo <= 1.0 && hi >= 1.0 => format!(
                                "no significant difference (geometric mean {} for {w} over {} workloads, 95% CI {} – {})",
                                format::ratio(f),
                                c.voting_rows,
                                format::ratio(lo),
                                format::ratio(hi)
                            ),
                            (Some(lo), Some(hi)) => format!(
                                "{w} is {} faster (geometric mean over {} workloads, 95% CI {} – {})",
                                format::ratio(f),
                                c.voting_rows,
                                format::ratio(lo),
                                format::ratio(hi)
                            ),
                            _ => format!(
                                "{w} is {} faster (geometric mean over {} workload{}, no CI)",
                                format::ratio(f),
                                c.voting_rows,
                                if c.voting_rows == 1 { "" } else { "s" }
                            ),
                        },
                        _ => "—".into(),
                    } + &excluded_note(c.rows.len() - c.voting_rows),
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
                                format!("no significant difference ({} {}{ci})", r.winner, format::ratio(r.factor))
                            } else {
                                format!("{} {}{ci}", r.winner, format::ratio(r.factor))
                            };
                            for caveat in &r.caveats {
                                result.push_str(&format!(" — {caveat}"));
                            }
                            VerdictRowView {
                                workload: cell(&r.workload),
                                params: cell(&r.params),
                                precision: cell(&r.precision),
                                framework: cell(&r.framework),
                                result: cell(&result),
                                bottleneck: format!(
                                    "{}: {} / {}: {}",
                                    cell(&p.a.label),
                                    bound_text(r.bound_a),
                                    cell(&p.b.label),
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
        kernel: cell(&r.key.kernel),
        precision: cell(&r.key.precision),
        params: cell(&r.key.params),
        framework: cell(&r.key.framework),
        a: rate_text(&r.a.rate),
        b: rate_text(&r.b.rate),
        ratio: ratio_text(&r.speedup),
        verdict: cell(&{
            let mut v = verdict_text(a, b, &r.speedup);
            for caveat in &r.caveats {
                v.push_str(&format!(" — {caveat}"));
            }
            v
        }),
        source: cell(&if r.key.script.is_empty() {
            "silirep runs".to_string()
        } else {
            r.key.script.clone()
        }),
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
            compute_source: cell(&format!(
                "{} {} ({})",
                r.compute.kernel, r.compute.params, r.compute.framework
            )),
            memory: format::si(r.memory.value, "B/s"),
            memory_source: cell(&format!(
                "{} {} ({})",
                r.memory.kernel, r.memory.params, r.memory.framework
            )),
            ridge: format!("{} FLOP/byte", format::sig3(r.ridge_flops_per_byte)),
            datasheet: r
                .datasheet
                .as_ref()
                .map(|d| cell(&format!("{} — {}", d.name, d.source)))
                .unwrap_or_else(|| "not in catalog".into()),
            mfu: r
                .mfu
                .map(|m| format!("{:.1}%", m * 100.0))
                .unwrap_or_else(|| "—".into()),
            mbu: r
                .mbu
                .map(|m| format!("{:.1}%", m * 100.0))
                .unwrap_or_else(|| "—".into()),
            sweep_fit: r
                .sweep_fit
                .as_ref()
                .map(|f| {
                    format!(
                        "fit of the intensity sweep: peak {}, bandwidth {}, ridge {} FLOP/byte",
                        format::si(f.peak_flops_per_s, "FLOP/s"),
                        format::si(f.bandwidth_bytes_per_s, "B/s"),
                        format::sig3(f.peak_flops_per_s / f.bandwidth_bytes_per_s)
                    )
                })
                .unwrap_or_default(),
            points: r
                .points
                .iter()
                .map(|p| RoofPointView {
                    kernel: cell(&p.kernel),
                    params: cell(&p.params),
                    framework: cell(&p.framework),
                    intensity: format::sig3(p.intensity_flops_per_byte),
                    achieved: p
                        .achieved_flops_per_s
                        .map(|a| format::si(a, "FLOP/s"))
                        .unwrap_or_else(|| "— (work unknown)".into()),
                    bound: bound_text(Some(p.bound)).to_string(),
                    fraction: p
                        .roof_fraction
                        .map(|f| format!("{:.0}%", f * 100.0))
                        .unwrap_or_else(|| "—".into()),
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
                    geomean: match (f.geomean.lower, f.geomean.upper) {
                        (Some(lo), Some(hi)) => format!(
                            "{} [{} – {}]",
                            format::ratio(f.geomean.value),
                            format::ratio(lo),
                            format::ratio(hi)
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
        machine_count: dataset.machines.len(),
        measurement_count: dataset.records.len(),
        file_count: dataset.files.len(),
        warning_count: dataset.warnings.len(),
        generated,
        machines: machine_views(dataset),
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
    let machine = machine_views(dataset)
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
            kernel: cell(&r.spec.name()),
            precision: cell(&r.spec.precision_label()),
            params: cell(&r.spec.params_label()),
            framework: cell(&r.framework),
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
            status: cell(&match &r.error {
                Some(e) => format!("failed: {e}"),
                None if r.verification == "passed" => "verified".into(),
                None if r.verification == "not_reported" => "not verified by source".into(),
                None => r.verification.clone(),
            }),
            clock: cell(r.clock.as_deref().unwrap_or("—")),
            source: cell(&format!("{} {}", r.source.file, r.source.json_path)),
        })
        .collect::<Vec<_>>();
    MachinePageView {
        has_clock: measurements.iter().any(|m| m.clock != "—"),
        machine,
        rooflines,
        measurements,
    }
}
