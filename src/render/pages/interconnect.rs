//! The "Interconnect" section of an analysis page (links as reported, the peer-to-peer
//! matrix, host↔device rates, collectives and network throughput against the datasheet
//! link) and the "Traffic captures" section (what each capture holds, its totals, and why it
//! may be less than a measurement).

use crate::analysis::interconnect::{Interconnect, Point};
use crate::ingest::capture::{TotalsSource, TrafficCapture};
use crate::util::format;
use serde::Serialize;

#[derive(Serialize)]
pub struct InterconnectView {
    pub machines: Vec<MachineLinksView>,
    pub collectives: Vec<CollectiveRowView>,
    pub network: Vec<NetworkRowView>,
    /// The datasheet link drawn on the collective charts, if any.
    pub reference: Option<String>,
    pub captures: Vec<CaptureView>,
}

#[derive(Serialize)]
pub struct MachineLinksView {
    pub machine: String,
    pub links: Vec<LinkRowView>,
    /// Header and rows of the peer-to-peer matrix as text (the heatmap's numbers).
    pub matrix_size: String,
    pub matrix_columns: Vec<String>,
    pub matrix_rows: Vec<MatrixRowView>,
    pub host_transfers: Vec<HostTransferView>,
    pub round_trips: Vec<RoundTripView>,
    pub datasheet_links: String,
}

#[derive(Serialize)]
pub struct LinkRowView {
    pub from: String,
    pub to: String,
    pub kind: String,
    pub label: String,
    pub attributes: String,
}

#[derive(Serialize)]
pub struct MatrixRowView {
    pub from: String,
    pub cells: Vec<String>,
}

#[derive(Serialize)]
pub struct HostTransferView {
    pub transfer: String,
    pub memory: String,
    pub device: u32,
    pub size: String,
    pub rate: String,
    pub framework: String,
}

#[derive(Serialize)]
pub struct RoundTripView {
    pub message: String,
    pub latency: String,
}

#[derive(Serialize)]
pub struct CollectiveRowView {
    pub collective: String,
    pub series: String,
    pub size: String,
    pub bus_bandwidth: String,
    pub of_datasheet: String,
}

#[derive(Serialize)]
pub struct NetworkRowView {
    pub series: String,
    pub size: String,
    pub throughput: String,
}

#[derive(Serialize)]
pub struct CaptureView {
    pub name: String,
    pub file: String,
    pub interface: String,
    pub duration: String,
    pub samples: usize,
    pub markers: usize,
    pub sent: String,
    pub received: String,
    pub peak: String,
    pub caveats: String,
}

impl InterconnectView {
    /// One line per collective silirep measured, at its largest size, against the datasheet
    /// link: the answer of an analysis that measured links only.
    pub fn headline_lines(&self) -> Vec<String> {
        self.collectives
            .iter()
            .filter(|c| !c.series.contains("nccl_tests"))
            .map(|c| {
                format!(
                    "{}, {}: {} bus bandwidth at {} ({}).",
                    c.collective, c.series, c.bus_bandwidth, c.size, c.of_datasheet
                )
            })
            .collect()
    }
}

fn rate_text(p: &Point) -> String {
    match (p.lower, p.upper) {
        (Some(lo), Some(hi)) => format!(
            "{} [{} – {}]",
            format::si(p.value, "B/s"),
            format::si(lo, "B/s"),
            format::si(hi, "B/s")
        ),
        _ => format!("{} (no CI)", format::si(p.value, "B/s")),
    }
}

/// The section's view; `None` when the analysis has no link measurement and no capture.
pub fn interconnect_view(
    ic: &Interconnect,
    captures: &[TrafficCapture],
) -> Option<InterconnectView> {
    if ic.is_empty() && captures.is_empty() {
        return None;
    }
    let machines = ic
        .machines
        .iter()
        .filter_map(|m| {
            let machine = m.machine.as_ref()?;
            let (matrix_size, matrix_columns, matrix_rows) = match &m.peer_matrix {
                Some(matrix) => (
                    format::bytes_binary(matrix.bytes),
                    matrix
                        .devices
                        .iter()
                        .map(|d| format!("to GPU {d}"))
                        .collect(),
                    matrix
                        .devices
                        .iter()
                        .map(|src| MatrixRowView {
                            from: format!("GPU {src}"),
                            cells: matrix
                                .devices
                                .iter()
                                .map(|dst| {
                                    matrix
                                        .rates
                                        .get(&(*src, *dst))
                                        .map(|p| format::si(p.value, "B/s"))
                                        .unwrap_or_else(|| "—".into())
                                })
                                .collect(),
                        })
                        .collect(),
                ),
                None => (String::new(), Vec::new(), Vec::new()),
            };
            Some(MachineLinksView {
                machine: machine.label.clone(),
                links: m
                    .links
                    .iter()
                    .map(|l| LinkRowView {
                        from: l.from.clone(),
                        to: l.to.clone(),
                        kind: l.kind.clone(),
                        label: l.label.clone(),
                        attributes: l
                            .attributes
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                    .collect(),
                matrix_size,
                matrix_columns,
                matrix_rows,
                host_transfers: m
                    .host_transfers
                    .iter()
                    .map(|h| HostTransferView {
                        transfer: h.name.clone(),
                        memory: h.memory.clone(),
                        device: h.device,
                        size: format::bytes_binary(h.point.bytes),
                        rate: rate_text(&h.point),
                        framework: h.framework.clone(),
                    })
                    .collect(),
                round_trips: m
                    .round_trips
                    .iter()
                    .map(|r| RoundTripView {
                        message: format::bytes_binary(r.message_bytes),
                        latency: format::duration(r.median_s),
                    })
                    .collect(),
                datasheet_links: m
                    .datasheet_links
                    .iter()
                    .map(|(name, rate)| {
                        format!("{name} {} per direction", format::si(*rate, "B/s"))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            })
        })
        .collect();
    let collectives = ic
        .collectives
        .iter()
        .flat_map(|(op, curves)| {
            curves.iter().filter_map(move |c| {
                let largest = c.points.last()?;
                Some(CollectiveRowView {
                    collective: op.clone(),
                    series: c.label.clone(),
                    size: format::bytes_binary(largest.bytes),
                    bus_bandwidth: rate_text(largest),
                    of_datasheet: ic
                        .reference
                        .as_ref()
                        .map(|(name, rate)| {
                            format!("{:.0}% of {name}", largest.value / rate * 100.0)
                        })
                        .unwrap_or_else(|| "—".into()),
                })
            })
        })
        .collect();
    let network = ic
        .network
        .iter()
        .filter_map(|c| {
            let best = c.points.iter().max_by(|a, b| a.value.total_cmp(&b.value))?;
            Some(NetworkRowView {
                series: c.label.clone(),
                size: format::bytes_binary(best.bytes),
                throughput: rate_text(best),
            })
        })
        .collect();
    let captures = captures
        .iter()
        .map(|c| CaptureView {
            name: c.name.clone(),
            file: c.source.file.clone(),
            interface: c.interface.clone().unwrap_or_else(|| "—".into()),
            duration: c
                .duration_s
                .or_else(|| c.samples.last().map(|s| s.t_s))
                .map(format::duration)
                .unwrap_or_else(|| "—".into()),
            samples: c.samples.len(),
            markers: c.markers.len(),
            sent: total_text(c.send_bytes, c.totals_source),
            received: total_text(c.recv_bytes, c.totals_source),
            peak: format::si(c.peak_bytes_per_s(), "B/s"),
            caveats: if c.caveats.is_empty() {
                "—".into()
            } else {
                c.caveats.join("; ")
            },
        })
        .collect();
    Some(InterconnectView {
        machines,
        collectives,
        network,
        reference: ic
            .reference
            .as_ref()
            .map(|(name, rate)| format!("{name}: {} per direction", format::si(*rate, "B/s"))),
        captures,
    })
}

fn total_text(bytes: f64, source: TotalsSource) -> String {
    let text = format::si(bytes, "B");
    match source {
        TotalsSource::Counted => text,
        TotalsSource::IntegratedRates => format!("{text} (rates × intervals)"),
    }
}
