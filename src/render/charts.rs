//! Which charts a report has and what goes into them. Drawing is `silirep-charts`' job;
//! this module only turns the dataset and analysis into series.

use crate::analysis::{Analysis, RateEstimate};
use crate::ingest::{Dataset, Record};
use silirep_charts::{LineChart, Roof, RoofPoint, RooflineChart, Series, SeriesPoint};
use std::collections::{BTreeMap, BTreeSet};

/// A chart ready to render, with the file stem it is written under (`charts/<stem>.png`).
pub enum ChartSpec {
    Roofline(RooflineChart),
    Line(LineChart),
}

pub struct NamedChart {
    pub stem: String,
    pub title: String,
    pub spec: ChartSpec,
}

pub fn charts(dataset: &Dataset, analysis: &Analysis) -> Vec<NamedChart> {
    let mut out = Vec::new();
    out.extend(roofline_charts(analysis));
    out.extend(gemm_charts(dataset, &analysis.rates));
    if let Some(c) = family_chart(
        dataset,
        &analysis.rates,
        |r| r.spec.family() == silirep_core::KernelFamily::Bandwidth,
        "bandwidth",
        "Memory bandwidth vs buffer size",
        "buffer size per array (bytes)",
        "bandwidth (B/s)",
    ) {
        out.push(c);
    }
    if let Some(c) = family_chart(
        dataset,
        &analysis.rates,
        |r| r.spec.family() == silirep_core::KernelFamily::Attention,
        "attention",
        "Attention throughput vs sequence length",
        "sequence length (tokens)",
        "throughput (FLOP/s)",
    ) {
        out.push(c);
    }
    if let Some(c) = family_chart(
        dataset,
        &analysis.rates,
        |r| r.spec.family() == silirep_core::KernelFamily::Layer,
        "layer",
        "Transformer layer throughput vs sequence length",
        "sequence length (tokens)",
        "throughput (FLOP/s)",
    ) {
        out.push(c);
    }
    out
}

fn roofline_charts(analysis: &Analysis) -> Vec<NamedChart> {
    let precisions: BTreeSet<&str> = analysis
        .rooflines
        .iter()
        .map(|r| r.precision.as_str())
        .collect();
    precisions
        .into_iter()
        .map(|precision| {
            let mut roofs = Vec::new();
            let mut points = Vec::new();
            for roof in analysis
                .rooflines
                .iter()
                .filter(|r| r.precision == precision)
            {
                let index = roofs.len();
                roofs.push(Roof {
                    label: roof.machine.label.clone(),
                    peak_flops_per_s: roof.compute.value,
                    bandwidth_bytes_per_s: roof.memory.value,
                });
                for p in &roof.points {
                    if let Some(achieved) = p.achieved_flops_per_s {
                        points.push(RoofPoint {
                            roof_index: index,
                            label: p.kernel.clone(),
                            intensity_flops_per_byte: p.intensity_flops_per_byte,
                            achieved_flops_per_s: achieved,
                        });
                    }
                }
            }
            let title = format!("Roofline, {precision}: measured ceilings and workloads");
            NamedChart {
                stem: format!("roofline_{}", file_safe(precision)),
                title: title.clone(),
                spec: ChartSpec::Roofline(RooflineChart {
                    title,
                    roofs,
                    points,
                }),
            }
        })
        .collect()
}

fn gemm_charts(dataset: &Dataset, rates: &[Option<RateEstimate>]) -> Vec<NamedChart> {
    let precisions: BTreeSet<String> = dataset
        .records
        .iter()
        .filter(|r| r.spec.family() == silirep_core::KernelFamily::Gemm)
        .map(|r| r.spec.precision_label())
        .collect();
    precisions
        .into_iter()
        .filter_map(|precision| {
            family_chart(
                dataset,
                rates,
                |r| {
                    r.spec.family() == silirep_core::KernelFamily::Gemm
                        && r.spec.precision_label() == precision
                },
                &format!("gemm_{}", file_safe(&precision)),
                &format!("GEMM throughput vs size, {precision}"),
                "matrix size m = n = k",
                "throughput (FLOP/s)",
            )
        })
        .collect()
}

/// One series per (machine, framework, kernel, precision, script) among the selected
/// records; x is each record's primary size (matrix size, sequence length, buffer bytes), y
/// its rate.
fn family_chart(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    select: impl Fn(&Record) -> bool,
    stem: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Option<NamedChart> {
    let mut series: BTreeMap<String, Vec<SeriesPoint>> = BTreeMap::new();
    for (r, rate) in dataset.records.iter().zip(rates) {
        let Some(rate) = rate.as_ref().filter(|_| select(r)) else {
            continue;
        };
        let script = r.source.file.rsplit('/').next().unwrap_or_default();
        let script = if r.run_id.is_some() {
            "silirep"
        } else {
            script.trim_end_matches(".json")
        };
        let label = format!(
            "{} · {} · {} ({script}) · {}",
            r.machine.label,
            r.framework,
            r.spec.name(),
            r.spec.precision_label()
        );
        series.entry(label).or_default().push(SeriesPoint {
            x: r.spec.primary_size() as f64,
            y: rate.value,
            y_low: rate.lower,
            y_high: rate.upper,
        });
    }
    if series.is_empty() {
        return None;
    }
    let series = series
        .into_iter()
        .map(|(label, mut points)| {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Series { label, points }
        })
        .collect();
    Some(NamedChart {
        stem: stem.to_string(),
        title: title.to_string(),
        spec: ChartSpec::Line(LineChart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            x_log: true,
            y_log: true,
            series,
        }),
    })
}

/// One chart per kernel family of a machine's history: each configuration measured in more
/// than one run is a series of its rate per run (x = run number), with the run's 95% CI, and
/// every run where a configuration of the family steps is marked with what changed there.
pub fn history_charts(
    history: &crate::analysis::history::MachineHistory,
) -> Vec<(silirep_core::KernelFamily, silirep_charts::HistoryChart)> {
    let mut markers: BTreeMap<silirep_core::KernelFamily, BTreeMap<usize, BTreeSet<String>>> =
        BTreeMap::new();
    for c in &history.configurations {
        for step in &c.steps {
            let changes = markers
                .entry(c.key.family)
                .or_default()
                .entry(step.run)
                .or_default();
            changes.extend(step.coinciding_changes.iter().cloned());
        }
    }
    let mut by_family: std::collections::BTreeMap<silirep_core::KernelFamily, Vec<Series>> =
        std::collections::BTreeMap::new();
    let mut units = std::collections::BTreeMap::new();
    for c in &history.configurations {
        let Some(first) = c.points.first() else {
            continue;
        };
        units.insert(c.key.family, first.rate.unit.symbol());
        by_family.entry(c.key.family).or_default().push(Series {
            label: format!("{} {} {}", c.key.kernel, c.key.precision, c.key.params),
            points: c
                .points
                .iter()
                .map(|p| SeriesPoint {
                    x: (p.run + 1) as f64,
                    y: p.rate.value,
                    y_low: p.rate.lower,
                    y_high: p.rate.upper,
                })
                .collect(),
        });
    }
    by_family
        .into_iter()
        .map(|(family, series)| {
            let marked = markers
                .get(&family)
                .map(|runs| {
                    runs.iter()
                        .map(|(run, changes)| silirep_charts::Marker {
                            x: (*run + 1) as f64,
                            // The chart has room for a short label; the page lists them all.
                            label: match changes.iter().next() {
                                None => "step".into(),
                                Some(first) if changes.len() == 1 => first.clone(),
                                Some(first) => format!("{first} (+{} more)", changes.len() - 1),
                            },
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                family,
                silirep_charts::HistoryChart {
                    line: LineChart {
                        title: format!("{}: {} over runs", history.machine.label, family.name()),
                        x_label: "run (time order)".into(),
                        y_label: units.get(&family).copied().unwrap_or("rate").into(),
                        x_log: false,
                        y_log: true,
                        series,
                    },
                    markers: marked,
                },
            )
        })
        .collect()
}

fn file_safe(text: &str) -> String {
    crate::util::slug(text).replace('-', "_")
}
