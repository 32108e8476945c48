//! The report's pages: a view model of preformatted strings (numbers formatted only by
//! [`crate::util::format`]) rendered through tera templates. Templates hold presentation only;
//! the built-in ones are compiled into the binary and `--templates DIR` overrides them by name.
//!
//! One file per page kind builds its view: [`analysis`] (one analysis: verdicts, rooflines,
//! GEMM tables, comparisons), [`machine`] (one machine), [`index`] (the page listing several
//! analyses). What they share — machine and roofline views — is here; how a number or a
//! verdict reads is in [`text`].

pub mod analysis;
pub mod history;
pub mod index;
pub mod interconnect;
pub mod machine;
pub mod predictions;
mod text;

pub use analysis::{AnalysisPlace, report_view};
pub use index::{analyses_index_view, analysis_link_view};
pub use machine::machine_page_views;

use crate::analysis::rooflines::Roofline;
use crate::ingest::{Dataset, MachineKey};
use crate::util::format;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use text::{bound_text, ceiling_source};

/// `index.*` render one analysis, `analyses.*` the page that lists several, `machine.md` one
/// machine.
pub const TEMPLATE_NAMES: [&str; 7] = [
    "index.md.tera",
    "machine.md.tera",
    "history.md.tera",
    "index.html.tera",
    "analyses.md.tera",
    "analyses.html.tera",
    "inventory.md.tera",
];

fn built_in(name: &str) -> &'static str {
    match name {
        "index.md.tera" => include_str!("../../../templates/index.md.tera"),
        "machine.md.tera" => include_str!("../../../templates/machine.md.tera"),
        "history.md.tera" => include_str!("../../../templates/history.md.tera"),
        "index.html.tera" => include_str!("../../../templates/index.html.tera"),
        "analyses.md.tera" => include_str!("../../../templates/analyses.md.tera"),
        "analyses.html.tera" => include_str!("../../../templates/analyses.html.tera"),
        "inventory.md.tera" => include_str!("../../../templates/inventory.md.tera"),
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
// Views more than one page kind shows

#[derive(Serialize, Clone)]
pub struct MachineView {
    pub label: String,
    pub id: String,
    pub page: String,
    pub frameworks: String,
    pub measurements: usize,
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

pub(super) fn machine_views(dataset: &Dataset, root_prefix: &str) -> Vec<MachineView> {
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

pub(super) fn roofline_views(rooflines: &[Roofline]) -> Vec<RooflineView> {
    rooflines
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
