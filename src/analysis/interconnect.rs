//! What the report shows about links: per machine, the links its measurements crossed (as the
//! driver or OS reported them), the peer-to-peer matrix, host↔device rates and network round
//! trips; across machines, collective bus bandwidth and network throughput by message size,
//! beside the link's datasheet figure. Rates come from the per-record estimates; nothing here
//! is a new measurement.

use super::RateEstimate;
use super::catalog::Catalog;
use crate::ingest::{Dataset, MachineKey, Record, SeenLink};
use silirep_core::{KernelSpec, LinkDirection};
use std::collections::BTreeMap;

/// A rate with its CI, and the configuration it belongs to.
#[derive(Debug, Clone)]
pub struct Point {
    /// Bytes per operation (a collective's S, a write size, a copy's size).
    pub bytes: u64,
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl Point {
    fn of(bytes: u64, rate: &RateEstimate, scale: f64) -> Point {
        Point {
            bytes,
            value: rate.value * scale,
            lower: rate.lower.map(|v| v * scale),
            upper: rate.upper.map(|v| v * scale),
        }
    }
}

/// One line of a chart: a machine's collective (or transfer) over message sizes.
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub points: Vec<Point>,
}

/// The rate of every ordered GPU pair of one machine, at the largest size measured.
#[derive(Debug, Clone)]
pub struct PeerMatrix {
    pub devices: Vec<u32>,
    pub bytes: u64,
    /// `(src, dst)` → bytes/s.
    pub rates: BTreeMap<(u32, u32), Point>,
}

#[derive(Debug, Clone)]
pub struct HostTransferRow {
    pub name: String,
    pub memory: String,
    pub device: u32,
    pub point: Point,
    pub framework: String,
}

#[derive(Debug, Clone)]
pub struct RoundTripRow {
    pub message_bytes: u64,
    pub median_s: f64,
    pub framework: String,
}

#[derive(Debug, Clone, Default)]
pub struct MachineLinks {
    pub machine: Option<MachineKey>,
    pub links: Vec<SeenLink>,
    pub peer_matrix: Option<PeerMatrix>,
    pub host_transfers: Vec<HostTransferRow>,
    pub round_trips: Vec<RoundTripRow>,
    /// Datasheet links of this machine from the catalog: `(name, bytes/s per direction)`.
    pub datasheet_links: Vec<(String, f64)>,
}

/// Everything the interconnect section needs; empty when no machine measured a link.
#[derive(Debug, Clone, Default)]
pub struct Interconnect {
    pub machines: Vec<MachineLinks>,
    /// Per collective name (`all_reduce`): bus bandwidth by size, one curve per machine, GPU
    /// count, dtype and source (silirep, nccl-tests).
    pub collectives: BTreeMap<String, Vec<Curve>>,
    /// Network throughput by write size, one curve per machine, direction and stream count.
    pub network: Vec<Curve>,
    /// The fastest datasheet link of the machines with collectives, for the charts: name and
    /// bytes/s per direction.
    pub reference: Option<(String, f64)>,
}

impl Interconnect {
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty() && self.collectives.is_empty() && self.network.is_empty()
    }
}

fn usable(r: &Record) -> bool {
    r.error.is_none() && r.verification != crate::ingest::Verification::Failed
}

pub fn analyse(
    dataset: &Dataset,
    rates: &[Option<RateEstimate>],
    catalog: &Catalog,
) -> Interconnect {
    let mut per_machine: BTreeMap<MachineKey, MachineLinks> = BTreeMap::new();
    let mut collectives: BTreeMap<String, BTreeMap<String, Vec<Point>>> = BTreeMap::new();
    let mut network: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    let mut peer_points: BTreeMap<MachineKey, BTreeMap<(u32, u32), Vec<Point>>> = BTreeMap::new();
    for (record, rate) in dataset.records.iter().zip(rates) {
        let (Some(rate), true) = (rate, usable(record)) else {
            continue;
        };
        let machine = &record.machine;
        match &record.spec {
            KernelSpec::Collective {
                op,
                bytes,
                dtype,
                devices,
            } => {
                let factor = record.spec.bus_bytes().unwrap_or(*bytes as f64) / (*bytes as f64);
                let label = format!(
                    "{}, {} GPUs, {dtype} ({})",
                    machine.label,
                    devices.len(),
                    record.framework
                );
                collectives
                    .entry(op.name().to_string())
                    .or_default()
                    .entry(label)
                    .or_default()
                    .push(Point::of(*bytes, rate, factor));
            }
            KernelSpec::PeerCopy {
                src_device,
                dst_device,
                bytes,
            } => {
                peer_points
                    .entry(machine.clone())
                    .or_default()
                    .entry((*src_device, *dst_device))
                    .or_default()
                    .push(Point::of(*bytes, rate, 1.0));
            }
            KernelSpec::HostTransfer {
                memory,
                device,
                bytes,
                ..
            } => {
                let entry = per_machine.entry(machine.clone()).or_default();
                let name = record.spec.name();
                let row = HostTransferRow {
                    name: name.clone(),
                    memory: memory.name().to_string(),
                    device: *device,
                    point: Point::of(*bytes, rate, 1.0),
                    framework: record.framework.clone(),
                };
                // Keep the largest size of each (direction, memory, device): the sustained rate.
                match entry
                    .host_transfers
                    .iter_mut()
                    .find(|r| r.name == name && r.memory == row.memory && r.device == row.device)
                {
                    Some(existing) if existing.point.bytes < row.point.bytes => *existing = row,
                    Some(_) => {}
                    None => entry.host_transfers.push(row),
                }
            }
            KernelSpec::NetworkTransfer {
                direction,
                streams,
                message_bytes,
                ..
            } => {
                // An imported iperf3 run is its own curve beside silirep's, at iperf3's write
                // size; its per-stream parts are in the summed record already.
                let tool = match record.framework.as_str() {
                    "iperf3_per_stream" => continue,
                    "iperf3" => " (iperf3)",
                    _ => "",
                };
                let way = match direction {
                    LinkDirection::ToPeer => "to peer",
                    LinkDirection::FromPeer => "from peer",
                };
                let label = format!(
                    "{}, {way}, {streams} stream{}{tool}",
                    machine.label,
                    if *streams == 1 { "" } else { "s" }
                );
                network
                    .entry(label)
                    .or_default()
                    .push(Point::of(*message_bytes, rate, 1.0));
            }
            KernelSpec::NetworkRoundTrip { message_bytes } => {
                if let Some(t) = record.timing.as_ref() {
                    per_machine
                        .entry(machine.clone())
                        .or_default()
                        .round_trips
                        .push(RoundTripRow {
                            message_bytes: *message_bytes,
                            median_s: t.center_s(),
                            framework: record.framework.clone(),
                        });
                }
            }
            _ => {}
        }
    }
    for (machine, pairs) in peer_points {
        let bytes = pairs.values().flatten().map(|p| p.bytes).max().unwrap_or(0);
        let mut devices: Vec<u32> = pairs.keys().flat_map(|(a, b)| [*a, *b]).collect();
        devices.sort_unstable();
        devices.dedup();
        let rates = pairs
            .into_iter()
            .filter_map(|(pair, points)| {
                points
                    .into_iter()
                    .find(|p| p.bytes == bytes)
                    .map(|p| (pair, p))
            })
            .collect();
        per_machine.entry(machine).or_default().peer_matrix = Some(PeerMatrix {
            devices,
            bytes,
            rates,
        });
    }
    for (machine, links) in &dataset.links {
        per_machine.entry(machine.clone()).or_default().links = links.iter().cloned().collect();
    }
    let mut reference: Option<(String, f64)> = None;
    for (machine, entry) in per_machine.iter_mut() {
        entry.machine = Some(machine.clone());
        entry
            .host_transfers
            .sort_by(|a, b| (a.device, &a.name, &a.memory).cmp(&(b.device, &b.name, &b.memory)));
        entry.round_trips.sort_by_key(|r| r.message_bytes);
        let info = dataset.machines.get(machine);
        if let Some(sheet) =
            catalog.find(&machine.label, info.and_then(|i| i.accelerator.as_deref()))
        {
            entry.datasheet_links = catalog
                .machine_links(&sheet)
                .into_iter()
                .map(|l| (l.name.clone(), l.bandwidth_bytes_per_s))
                .collect();
            let has_collectives = collectives
                .values()
                .flat_map(|c| c.keys())
                .any(|label| label.starts_with(&format!("{}, ", machine.label)));
            if has_collectives
                && let Some(fastest) = entry.datasheet_links.first()
                && reference.as_ref().is_none_or(|r| fastest.1 > r.1)
            {
                reference = Some(fastest.clone());
            }
        }
    }
    let curves = |map: BTreeMap<String, Vec<Point>>| -> Vec<Curve> {
        map.into_iter()
            .map(|(label, mut points)| {
                points.sort_by_key(|p| p.bytes);
                Curve { label, points }
            })
            .collect()
    };
    Interconnect {
        machines: per_machine.into_values().collect(),
        collectives: collectives
            .into_iter()
            .map(|(op, by_label)| (op, curves(by_label)))
            .collect(),
        network: curves(network),
        reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silirep_core::{CollectiveOp, Dtype};

    fn record(machine: &str, spec: KernelSpec, seconds: f64) -> Record {
        let key = MachineKey {
            id: machine.into(),
            label: machine.into(),
        };
        Record::for_tests(key, spec, vec![seconds; 8])
    }

    /// Eight GPUs: a generated P2P matrix and all-reduce ladder, as an x8 machine would give.
    #[test]
    fn an_eight_gpu_machine_gives_a_full_matrix_and_bus_bandwidth_by_size() {
        let mut d = Dataset::default();
        for src in 0..8u32 {
            for dst in (0..8u32).filter(|d| *d != src) {
                for bytes in [1u64 << 20, 1 << 30] {
                    let spec = KernelSpec::PeerCopy {
                        src_device: src,
                        dst_device: dst,
                        bytes,
                    };
                    // 1 GiB at 400 GB/s (+1 GB/s per destination, so cells differ).
                    let rate = 400e9 + dst as f64 * 1e9;
                    d.records.push(record("x8", spec, bytes as f64 / rate));
                }
            }
        }
        for bytes in [1u64 << 20, 1 << 30, 4 << 30] {
            let spec = KernelSpec::Collective {
                op: CollectiveOp::AllReduce,
                bytes,
                dtype: Dtype::Bf16,
                devices: (0..8).collect(),
            };
            d.records.push(record("x8", spec, bytes as f64 / 200e9));
        }
        crate::ingest::ensure_record_machines(&mut d);
        let rates = crate::analysis::rates(&d);
        let ic = analyse(&d, &rates, &Catalog::built_in());
        let m = &ic.machines[0];
        let matrix = m.peer_matrix.as_ref().unwrap();
        assert_eq!(matrix.devices, (0..8).collect::<Vec<_>>());
        assert_eq!(matrix.rates.len(), 56, "every ordered pair");
        assert_eq!(matrix.bytes, 1 << 30);
        let cell = &matrix.rates[&(3, 7)];
        assert!((cell.value / 407e9 - 1.0).abs() < 1e-9, "{}", cell.value);
        // Bus bandwidth = algorithm bandwidth × 2(n−1)/n = 200 GB/s × 1.75 (nccl-tests).
        let curve = &ic.collectives["all_reduce"][0];
        assert_eq!(curve.label, "x8, 8 GPUs, bf16 (test)");
        assert_eq!(curve.points.len(), 3);
        assert!((curve.points[2].value / 350e9 - 1.0).abs() < 1e-9);
    }
}
