//! The history page of a machine with more than one silirep run: its runs in time order with
//! what changed between them, a chart per kernel family (each configuration's rate per run,
//! with the run's 95% CI), and per configuration the steps found, with the changes that
//! coincide, or the run-to-run noise that is not a step.

use super::text::rate_text;
use crate::analysis::history::MachineHistory;
use crate::util::format;
use serde::Serialize;

#[derive(Serialize)]
pub struct HistoryPageView {
    pub machine: String,
    pub machine_id: String,
    pub machine_page: String,
    pub runs: Vec<RunView>,
    pub charts: Vec<ChartLink>,
    pub configurations: Vec<ConfigView>,
    /// Steps across all configurations, for the summary at the top.
    pub steps: Vec<StepView>,
}

#[derive(Serialize)]
pub struct RunView {
    pub number: usize,
    pub run_id: String,
    pub started_at: String,
    pub changes: String,
}

#[derive(Serialize)]
pub struct ChartLink {
    pub title: String,
    pub file: String,
}

#[derive(Serialize)]
pub struct ConfigView {
    pub configuration: String,
    /// `run 1: 41.2 GFLOP/s [...]; run 3: ...`
    pub values: String,
    pub verdict: String,
    pub noise_floor: String,
}

#[derive(Serialize)]
pub struct StepView {
    pub configuration: String,
    pub run: usize,
    pub change: String,
    pub coinciding: String,
}

/// `charts` are (family title, file name) pairs drawn for this machine.
pub fn history_view(
    history: &MachineHistory,
    machine_page: String,
    charts: Vec<(String, String)>,
) -> HistoryPageView {
    let mut steps = Vec::new();
    let configurations = history
        .configurations
        .iter()
        .map(|c| {
            let configuration = format!("{} {} {}", c.key.kernel, c.key.precision, c.key.params);
            let values = c
                .points
                .iter()
                .map(|p| format!("run {}: {}", p.run + 1, rate_text(&p.rate)))
                .collect::<Vec<_>>()
                .join("; ");
            for s in &c.steps {
                steps.push(StepView {
                    configuration: configuration.clone(),
                    run: s.run + 1,
                    change: signed_percent(s.rate_ratio - 1.0),
                    coinciding: if s.coinciding_changes.is_empty() {
                        "nothing recorded changed".into()
                    } else {
                        s.coinciding_changes.join("; ")
                    },
                });
            }
            let v = &c.verdict;
            let verdict = if !c.steps.is_empty() {
                let listed: Vec<String> = c
                    .steps
                    .iter()
                    .map(|s| format!("step of {} at run {}", signed_percent(s.rate_ratio - 1.0), s.run + 1))
                    .collect();
                listed.join("; ")
            } else if v.drift_without_step {
                format!(
                    "noise: runs spread {}{} with no step (drift or a shared machine), not a regression",
                    format::percent(v.spread_within_levels),
                    if v.runs_disagree {
                        " (more than their CIs allow)"
                    } else {
                        ""
                    }
                )
            } else if v.runs_disagree {
                format!(
                    "~ (runs disagree beyond their CIs by {}, within the run-to-run noise floor)",
                    format::percent(v.spread_within_levels)
                )
            } else {
                "~ (no change)".into()
            };
            ConfigView {
                configuration,
                values,
                verdict,
                noise_floor: c.noise_floor.describe(),
            }
        })
        .collect();
    HistoryPageView {
        machine: history.machine.label.clone(),
        machine_id: history.machine.id.clone(),
        machine_page,
        runs: history
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| RunView {
                number: i + 1,
                run_id: r.info.run_id.clone(),
                started_at: r.info.started_at.clone(),
                changes: if i == 0 {
                    "first run".into()
                } else if r.changes.is_empty() {
                    "nothing recorded changed".into()
                } else {
                    r.changes.join("; ")
                },
            })
            .collect(),
        charts: charts
            .into_iter()
            .map(|(title, file)| ChartLink { title, file })
            .collect(),
        configurations,
        steps,
    }
}

fn signed_percent(change: f64) -> String {
    if change >= 0.0 {
        format!("+{}", format::percent(change))
    } else {
        format!("−{}", format::percent(-change))
    }
}
