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
    Heatmap(silirep_charts::Heatmap),
}

/// Which section of the page shows a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartSection {
    Roofline,
    /// The general "Charts" section: throughput by size per kernel family.
    Kernels,
    Interconnect,
    Captures,
}

pub struct NamedChart {
    pub stem: String,
    pub title: String,
    pub spec: ChartSpec,
    pub section: ChartSection,
}

impl NamedChart {
    /// Draws the chart (both SVG and PNG).
    pub fn render(&self) -> Result<silirep_charts::Rendered, silirep_charts::ChartError> {
        match &self.spec {
            ChartSpec::Roofline(c) => silirep_charts::roofline(c),
            ChartSpec::Line(c) => silirep_charts::line_chart(c),
            ChartSpec::Heatmap(c) => silirep_charts::heatmap(c),
        }
    }
}

fn series_of(curve: &crate::analysis::interconnect::Curve) -> Series {
    Series {
        label: curve.label.clone(),
        points: curve
            .points
            .iter()
            .map(|p| SeriesPoint {
                x: p.bytes as f64,
                y: p.value,
                y_low: p.lower,
                y_high: p.upper,
            })
            .collect(),
    }
}

/// The interconnect charts: bus bandwidth by message size per collective (with the fastest
/// datasheet link as a reference line), network throughput by write size, one peer-to-peer
/// heatmap per machine with several GPUs, and each traffic capture over time with its markers.
pub fn interconnect_charts(
    ic: &crate::analysis::interconnect::Interconnect,
    captures: &[crate::ingest::capture::TrafficCapture],
) -> Vec<NamedChart> {
    let mut out = Vec::new();
    for (op, curves) in &ic.collectives {
        let title = format!("{op}: bus bandwidth vs message size");
        out.push(NamedChart {
            stem: format!("collective_{op}"),
            title: title.clone(),
            section: ChartSection::Interconnect,
            spec: ChartSpec::Line(LineChart {
                title,
                x_label: "message size S (bytes)".into(),
                y_label: "bus bandwidth (B/s)".into(),
                x_log: true,
                y_log: true,
                series: curves.iter().map(series_of).collect(),
                references: ic
                    .reference
                    .iter()
                    .map(|(name, rate)| silirep_charts::Reference {
                        label: format!("{name} datasheet, per direction"),
                        y: *rate,
                    })
                    .collect(),
                markers: Vec::new(),
            }),
        });
    }
    if !ic.network.is_empty() {
        let title = "Network throughput vs write size".to_string();
        out.push(NamedChart {
            stem: "network".into(),
            title: title.clone(),
            section: ChartSection::Interconnect,
            spec: ChartSpec::Line(LineChart {
                title,
                x_label: "write size (bytes)".into(),
                y_label: "throughput (B/s)".into(),
                x_log: true,
                y_log: true,
                series: ic.network.iter().map(series_of).collect(),
                ..Default::default()
            }),
        });
    }
    for m in &ic.machines {
        let (Some(machine), Some(matrix)) = (&m.machine, &m.peer_matrix) else {
            continue;
        };
        let labels: Vec<String> = matrix.devices.iter().map(|d| format!("GPU {d}")).collect();
        let title = format!(
            "{}: peer-to-peer copy bandwidth at {}",
            machine.label,
            crate::util::format::bytes_binary(matrix.bytes)
        );
        out.push(NamedChart {
            stem: format!("p2p_{}", file_safe(&machine.id)),
            title: title.clone(),
            section: ChartSection::Interconnect,
            spec: ChartSpec::Heatmap(silirep_charts::Heatmap {
                title,
                row_title: "from".into(),
                column_title: "to".into(),
                rows: labels.clone(),
                columns: labels,
                values: matrix
                    .devices
                    .iter()
                    .map(|src| {
                        matrix
                            .devices
                            .iter()
                            .map(|dst| matrix.rates.get(&(*src, *dst)).map(|p| p.value))
                            .collect()
                    })
                    .collect(),
                unit: "B/s".into(),
            }),
        });
    }
    for (i, c) in captures.iter().enumerate() {
        if c.samples.is_empty() {
            continue;
        }
        let title = format!("Traffic capture: {} ({})", c.name, c.source.file);
        let series =
            |label: &str, pick: fn(&crate::ingest::capture::TrafficSample) -> f64| Series {
                label: label.to_string(),
                points: c
                    .samples
                    .iter()
                    .map(|s| SeriesPoint {
                        x: s.t_s,
                        y: pick(s),
                        y_low: None,
                        y_high: None,
                    })
                    .collect(),
            };
        out.push(NamedChart {
            stem: format!("capture_{i}_{}", file_safe(&c.name)),
            title: title.clone(),
            section: ChartSection::Captures,
            spec: ChartSpec::Line(LineChart {
                title,
                x_label: "time since the capture started (s)".into(),
                y_label: "traffic (B/s)".into(),
                x_log: false,
                y_log: false,
                series: vec![
                    series("sent", |s| s.send_bytes_per_s),
                    series("received", |s| s.recv_bytes_per_s),
                ],
                references: Vec::new(),
                markers: c.markers.iter().map(|m| m.t_s).collect(),
            }),
        });
    }
    out
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
                section: ChartSection::Roofline,
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
        section: ChartSection::Kernels,
        spec: ChartSpec::Line(LineChart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            x_log: true,
            y_log: true,
            series,
            ..Default::default()
        }),
    })
}

fn file_safe(text: &str) -> String {
    crate::util::slug(text).replace('-', "_")
}
