//! The page listing several analyses: each with its question and its answer in a line, every
//! machine with the analyses it is in, and the inventory.

use super::analysis::verdict_views;
use super::{machine_views, roofline_views};
use crate::analysis::Analysis;
use crate::ingest::Dataset;
use serde::Serialize;

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
        headlines = roofline_views(&analysis.rooflines)
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
