//! iperf3 `-J` output: TCP (or UDP) throughput between the host that ran the client and a
//! server, as `KernelSpec::NetworkTransfer` records — the kernel `silirep link` measures, so an
//! iperf3 run and silirep's own lines up row for row: the client host is the machine, the
//! server its peer (named as iperf3 wrote its address), the write size iperf3's `blksize`.
//!
//! The file holds `start` (the client host's `uname` in `system_info`, the server in
//! `connecting_to`, the test in `test_start`: protocol, streams, duration, `reverse`),
//! `intervals` (every `-i` seconds: each stream's and the summed bytes, seconds, bits per
//! second and retransmits) and `end` (per-stream and summed totals, as sent and as received,
//! CPU use). A failed run has an `error` member and is refused with it.
//!
//! Records: the summed throughput (framework `iperf3`), and with several streams one record per
//! stream (`iperf3_per_stream`). The intervals are the samples: with B the run's mean bytes per
//! interval, each interval contributes the time it would take to carry B bytes at its own
//! rate, so the median sample is the median interval's rate and every interval weighs the same.
//! Omitted intervals (`-O`) are left out, as iperf3 leaves them out of its totals. The totals
//! iperf3 prints (bytes received over seconds, sent over seconds, retransmits, CPU) are kept in
//! `reported` and cross-checked against the intervals.

use super::node::Node;
use super::record::{MachineKey, Record, Timing, Verification};
use super::text::tool_machine;
use super::{FileView, ImportError, Imported, Importer, MachineInfo};
use silirep_core::{KernelSpec, LinkDirection, NetworkProtocol};
use std::collections::BTreeMap;

pub struct Iperf3;

impl Importer for Iperf3 {
    fn format_name(&self) -> &'static str {
        "iperf3 JSON"
    }

    fn recognises(&self, file: &FileView) -> bool {
        let start = file.doc.get("start");
        start.is_some_and(|s| s.get("test_start").is_some() || s.get("connecting_to").is_some())
            && file.doc.get("intervals").is_some()
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        if let Some(error) = root.opt("error") {
            return Err(ImportError::Invalid {
                path: error.path().to_string(),
                message: format!("iperf3 reported a failed run: {}", error.str()?),
            });
        }
        let start = root.get("start")?;
        let test = start.get("test_start")?;
        let protocol_node = test.get("protocol")?;
        let protocol = match protocol_node.str()? {
            "TCP" => NetworkProtocol::Tcp,
            "UDP" => NetworkProtocol::Udp,
            other => {
                return Err(ImportError::Invalid {
                    path: protocol_node.path().into(),
                    message: format!("expected \"TCP\" or \"UDP\", found {other:?}"),
                });
            }
        };
        let streams_node = test.get("num_streams")?;
        let streams = match u32::try_from(streams_node.u64()?) {
            Ok(n) if n > 0 => n,
            _ => return Err(streams_node.error("between 1 and 2^32 − 1 streams").into()),
        };
        let blksize = test.get("blksize")?;
        let message_bytes = blksize.u64()?;
        if message_bytes == 0 {
            return Err(blksize.error("a positive write size").into());
        }
        let reverse = test
            .opt("reverse")
            .map(|r| r.u64())
            .transpose()?
            .unwrap_or(0)
            != 0;
        if test.opt("bidir").map(|b| b.u64()).transpose()?.unwrap_or(0) != 0 {
            out.warn(
                file,
                "$.start.test_start.bidir",
                "a bidirectional run: only the client's forward direction is read",
            );
        }
        // Seen from the client's host, the machine the records belong to: `-R` makes the
        // server send.
        let direction = if reverse {
            LinkDirection::FromPeer
        } else {
            LinkDirection::ToPeer
        };
        let peer = start
            .opt("connecting_to")
            .and_then(|c| c.opt("host"))
            .map(|h| h.str().map(str::to_string))
            .transpose()?
            .unwrap_or_else(|| "unknown server".into());
        let system_info = start
            .opt("system_info")
            .map(|s| s.str().map(str::to_string))
            .transpose()?
            .unwrap_or_default();
        let machine = machine(file, &system_info);
        if !file.folder_described && !system_info.is_empty() {
            out.machines.push((
                machine.clone(),
                MachineInfo {
                    label: machine.label.clone(),
                    os: Some(system_info.clone()),
                    described_by: vec![file.rel_path.to_string()],
                    ..Default::default()
                },
            ));
        }
        let version = start
            .opt("version")
            .map(|v| v.str().map(str::to_string))
            .transpose()?
            .unwrap_or_else(|| "iperf3".into());

        let intervals = root.get("intervals")?.array()?;
        let end = root.get("end")?;
        let sum_sent = end.opt("sum_sent");
        let sum_received = end.opt("sum_received");
        let mut totals = BTreeMap::new();
        for (name, node) in [("sent", &sum_sent), ("received", &sum_received)] {
            if let Some(node) = node {
                let (bytes, seconds) = bytes_and_seconds(node)?;
                check_bits_per_second(out, file, node, bytes, seconds)?;
                if seconds > 0.0 {
                    totals.insert(format!("bytes_per_s_{name}"), bytes / seconds);
                }
                totals.insert(format!("bytes_{name}"), bytes);
                if let Some(r) = node.opt("retransmits") {
                    totals.insert("retransmits".into(), r.f64()?);
                }
            }
        }
        if let Some(cpu) = end.opt("cpu_utilization_percent") {
            for (key, name) in [
                ("host_total", "cpu_client_percent"),
                ("remote_total", "cpu_server_percent"),
            ] {
                if let Some(v) = cpu.opt(key) {
                    totals.insert(name.into(), v.f64()?);
                }
            }
        }

        // Every record is this run's transfer; only the bytes of a sample differ.
        let transfer = |bytes: u64| KernelSpec::NetworkTransfer {
            protocol,
            direction,
            streams,
            message_bytes,
            bytes,
            peer: Some(peer.clone()),
        };

        // Summed throughput.
        let sums: Vec<Node> = intervals
            .iter()
            .map(|i| i.get("sum"))
            .collect::<Result<_, _>>()?;
        let fallback = sum_received.as_ref().or(sum_sent.as_ref());
        let (bytes, timing, how) = interval_timing(out, file, &sums, fallback)?;
        let mut record = network_record(
            file,
            &machine,
            "iperf3",
            transfer(bytes),
            timing,
            "$.intervals[*].sum",
        );
        record.notes.push(format!(
            "{version}, {streams} stream(s) to {peer}{}: {how}",
            if reverse {
                ", reverse (-R: the server sent)"
            } else {
                ""
            }
        ));
        if let (Some(&received), Some(&rate)) = (
            totals.get("bytes_received"),
            totals.get("bytes_per_s_received"),
        ) {
            record.notes.push(format!(
                "iperf3's receiver total: {received} bytes at {:.3} Gbit/s (reported bytes_per_s_received)",
                rate * 8.0 / 1e9
            ));
            let interval_bytes: f64 = sums
                .iter()
                .filter(|s| !omitted(s))
                .filter_map(|s| s.opt("bytes").and_then(|b| b.f64().ok()))
                .sum();
            if let Some(&sent) = totals.get("bytes_sent")
                && interval_bytes > 0.0
                && (interval_bytes - sent).abs() > 0.01 * sent
                && (interval_bytes - received).abs() > 0.01 * received
            {
                out.warn(
                    file,
                    "$.intervals",
                    format!(
                        "the intervals carry {interval_bytes} bytes, the end totals {sent} sent \
                         and {received} received: intervals are missing from the file"
                    ),
                );
            }
        }
        record.reported = totals.clone();
        out.records.push(record);

        // One record per stream when there are several.
        if streams > 1 {
            for stream_index in 0..streams as usize {
                let nodes: Vec<Node> = intervals
                    .iter()
                    .map(|i| {
                        let list = i.get("streams")?;
                        list.array()?
                            .into_iter()
                            .nth(stream_index)
                            .ok_or_else(|| list.error(&format!("{streams} streams")))
                    })
                    .collect::<Result<_, _>>()?;
                let end_stream = end
                    .opt("streams")
                    .and_then(|s| s.array().ok())
                    .and_then(|s| s.into_iter().nth(stream_index));
                let end_side = end_stream
                    .as_ref()
                    .and_then(|s| s.opt("receiver").or_else(|| s.opt("sender")));
                let (bytes, timing, how) = interval_timing(out, file, &nodes, end_side.as_ref())?;
                let socket = nodes
                    .first()
                    .and_then(|n| n.opt("socket"))
                    .map(|s| s.u64())
                    .transpose()?;
                let mut record = network_record(
                    file,
                    &machine,
                    "iperf3_per_stream",
                    transfer(bytes),
                    timing,
                    &format!("$.intervals[*].streams[{stream_index}]"),
                );
                record.notes.push(format!(
                    "stream {} of {streams}{}: {how}",
                    stream_index + 1,
                    socket.map(|s| format!(" (socket {s})")).unwrap_or_default()
                ));
                if let Some(side) = end_side {
                    let (b, s) = bytes_and_seconds(&side)?;
                    if s > 0.0 {
                        record.reported.insert("bytes_per_s_total".into(), b / s);
                    }
                }
                out.records.push(record);
            }
        }
        Ok(())
    }
}

/// The client's host, as iperf3's `uname` line names it (`Linux <hostname> ...`), unless the
/// folder already says which machine this is.
fn machine(file: &FileView, system_info: &str) -> MachineKey {
    if file.folder_described {
        return file.folder_machine.clone();
    }
    let host = system_info.split_whitespace().nth(1).unwrap_or("");
    if host.is_empty() {
        return file.folder_machine.clone();
    }
    tool_machine(host, system_info, "", None, None)
}

fn network_record(
    file: &FileView,
    machine: &MachineKey,
    framework: &str,
    spec: KernelSpec,
    timing: Option<Timing>,
    json_path: &str,
) -> Record {
    Record {
        machine: machine.clone(),
        framework: framework.into(),
        error: timing
            .is_none()
            .then(|| "no interval carried any bytes".to_string()),
        spec,
        timing,
        verification: Verification::NotReported,
        run_id: None,
        source: file.provenance(json_path),
        notes: Vec::new(),
        clock: None,
        reported: BTreeMap::new(),
    }
}

fn omitted(node: &Node) -> bool {
    node.opt("omitted").and_then(|o| o.value.as_bool()) == Some(true)
}

fn bytes_and_seconds(node: &Node) -> Result<(f64, f64), ImportError> {
    let bytes_node = node.get("bytes")?;
    let bytes = bytes_node.f64()?;
    if !(bytes.is_finite() && bytes >= 0.0) {
        return Err(bytes_node.error("a non-negative byte count").into());
    }
    let seconds_node = node.get("seconds")?;
    let seconds = seconds_node.f64()?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(seconds_node
            .error("a non-negative number of seconds")
            .into());
    }
    Ok((bytes, seconds))
}

fn check_bits_per_second(
    out: &mut Imported,
    file: &FileView,
    node: &Node,
    bytes: f64,
    seconds: f64,
) -> Result<(), ImportError> {
    if let Some(bps) = node.opt("bits_per_second") {
        let stated = bps.f64()?;
        if seconds > 0.0 {
            let ours = bytes * 8.0 / seconds;
            if (stated - ours).abs() > 0.001 * ours.max(1.0) {
                out.warn(
                    file,
                    bps.path(),
                    format!("{stated} bit/s is not bytes × 8 / seconds ({ours:.0} bit/s)"),
                );
            }
        }
    }
    Ok(())
}

/// Bytes per iteration and the samples of a series of intervals (see the module doc); with no
/// usable interval, the end total as one value.
fn interval_timing(
    out: &mut Imported,
    file: &FileView,
    intervals: &[Node],
    end_total: Option<&Node>,
) -> Result<(u64, Option<Timing>, String), ImportError> {
    let mut rates = Vec::new();
    let mut total_bytes = 0.0;
    let mut omitted_count = 0;
    for node in intervals {
        if omitted(node) {
            omitted_count += 1;
            continue;
        }
        let (bytes, seconds) = bytes_and_seconds(node)?;
        if bytes == 0.0 || seconds == 0.0 {
            out.warn(
                file,
                node.path(),
                format!("an interval of {seconds} s that carried {bytes} bytes (a stall): left out of the samples"),
            );
            continue;
        }
        rates.push(bytes / seconds);
        total_bytes += bytes;
    }
    if !rates.is_empty() {
        let per_interval = (total_bytes / rates.len() as f64).round().max(1.0);
        let samples = rates.iter().map(|r| per_interval / r).collect();
        let omitted_text = if omitted_count > 0 {
            format!(", {omitted_count} omitted interval(s) left out")
        } else {
            String::new()
        };
        return Ok((
            per_interval as u64,
            Some(Timing::Samples(samples)),
            format!(
                "samples are the {} intervals' rates, each as the time to carry the mean \
                 interval's {per_interval} bytes{omitted_text}",
                rates.len()
            ),
        ));
    }
    match end_total {
        Some(node) => {
            let (bytes, seconds) = bytes_and_seconds(node)?;
            let timing = (bytes > 0.0 && seconds > 0.0).then_some(Timing::Single(seconds));
            Ok((
                bytes as u64,
                timing,
                "no intervals: the run's end total as one value".into(),
            ))
        }
        None => Ok((0, None, "no intervals and no end totals".into())),
    }
}
