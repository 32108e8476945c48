//! `*_traffic*.json` and `*_finetune_results.json`: interface traffic on the Thunderbolt
//! bridge between the M5 and the M4 Pro while a tensor- or expert-parallel fine-tune step ran.
//!
//! A capture (`metadata`, `markers`, `samples` with `timestamp`, `send_rate_gbs`,
//! `recv_rate_gbs` and, in real captures, `send_bytes`/`recv_bytes` counters) becomes a
//! [`TrafficCapture`] for charts. A fine-tune summary (`traffic_summary`: averages and maxima
//! of one capture) holds nothing a capture does not, so it is recognised and not imported.
//! Both are checked, and what makes them less than a measurement is a warning and a caveat:
//! a capture whose every sample is zero recorded nothing; a file without capture metadata
//! (interface, sample rate, capture time) cannot be traced to a capture.

use super::distributed_inference::seed_machine;
use super::*;
use crate::ingest::capture::{self, Marker, TotalsSource, TrafficCapture, TrafficSample};
use crate::ingest::node::Node;

/// The files write rates in GB/s: 10⁹ bytes per second (their `*_gbps` twins are 8× these).
const GB: f64 = 1e9;

pub(super) struct Traffic;

impl Importer for Traffic {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark interconnect capture"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("samples").is_some_and(|s| s.is_array())
            && (file.doc.get("markers").is_some() || file.doc.get("metadata").is_some())
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        let metadata = root.opt("metadata");
        let text = |key: &str| -> Result<Option<String>, ImportError> {
            Ok(metadata
                .as_ref()
                .and_then(|m| m.opt(key))
                .map(|n| n.str().map(str::to_string))
                .transpose()?)
        };
        let number = |key: &str| -> Result<Option<f64>, ImportError> {
            Ok(metadata
                .as_ref()
                .and_then(|m| m.opt(key))
                .map(|n| n.f64_or_missing())
                .transpose()?
                .flatten())
        };
        let interface = text("interface")?;
        let captured_at = text("captured_at")?;
        let sample_rate_hz = number("sample_rate_hz")?;
        let stated_samples = number("num_samples")?;
        let duration_s = number("duration_seconds")?;
        let name = text("name")?.unwrap_or_else(|| {
            file.file_name
                .trim_end_matches(".json")
                .trim_end_matches(".JSON")
                .to_string()
        });
        let mut caveats = Vec::new();
        if interface.is_none() && sample_rate_hz.is_none() && captured_at.is_none() {
            let message = "no capture metadata (interface, sample rate, capture time): the \
                           series cannot be traced to a capture and is shown as the file \
                           gives it, not as a measurement";
            out.warn(file, "$.metadata", message);
            caveats.push(message.to_string());
        }

        let samples_node = root.get("samples")?;
        let mut samples = Vec::new();
        let mut counted = Some((0.0, 0.0));
        let mut previous_t = f64::NEG_INFINITY;
        for item in samples_node.array()? {
            let t = item.get("timestamp")?.f64_or_missing()?;
            let send = item.get("send_rate_gbs")?.f64_or_missing()?;
            let recv = item.get("recv_rate_gbs")?.f64_or_missing()?;
            let (Some(t), Some(send), Some(recv)) = (t, send, recv) else {
                out.warn(
                    file,
                    item.path(),
                    "a sample with a missing (NaN) timestamp or rate: left out",
                );
                continue;
            };
            if !(t.is_finite() && t >= 0.0)
                || send < 0.0
                || recv < 0.0
                || !send.is_finite()
                || !recv.is_finite()
            {
                out.warn(
                    file,
                    item.path(),
                    format!(
                        "a sample with a negative or non-finite value (timestamp {t}, send \
                         {send} GB/s, receive {recv} GB/s): left out"
                    ),
                );
                continue;
            }
            if t < previous_t {
                out.warn(
                    file,
                    item.path(),
                    format!(
                        "timestamp {t} s is earlier than the previous sample's ({previous_t} s)"
                    ),
                );
            }
            previous_t = t;
            counted = match (
                counted,
                counter(&item, "send_bytes")?,
                counter(&item, "recv_bytes")?,
            ) {
                (Some((s, r)), Some(ds), Some(dr)) => Some((s + ds, r + dr)),
                _ => None,
            };
            samples.push(TrafficSample {
                t_s: t,
                send_bytes_per_s: send * GB,
                recv_bytes_per_s: recv * GB,
            });
        }
        if let Some(n) = stated_samples
            && n != samples.len() as f64
        {
            out.warn(
                file,
                "$.metadata.num_samples",
                format!(
                    "the metadata counts {n} samples, the file holds {} usable ones",
                    samples.len()
                ),
            );
        }
        let (send_bytes, recv_bytes, totals_source) = match counted {
            Some((s, r)) if !samples.is_empty() => (s, r, TotalsSource::Counted),
            _ => {
                let (s, r) = capture::integrate(&samples);
                (s, r, TotalsSource::IntegratedRates)
            }
        };
        if samples.is_empty() {
            let message = "the capture holds no samples";
            out.warn(file, samples_node.path(), message);
            caveats.push(message.into());
        } else if samples
            .iter()
            .all(|s| s.send_bytes_per_s == 0.0 && s.recv_bytes_per_s == 0.0)
            && send_bytes == 0.0
            && recv_bytes == 0.0
        {
            let message = format!(
                "the capture recorded nothing: all {} samples are 0 bytes each way{}; it is no \
                 evidence of the traffic between the machines",
                samples.len(),
                interface
                    .as_deref()
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default()
            );
            out.warn(file, samples_node.path(), message.clone());
            caveats.push(message);
        } else if samples.len() > 1
            && samples
                .iter()
                .all(|s| s.send_bytes_per_s == s.recv_bytes_per_s)
        {
            let message = format!(
                "send and receive rates are equal in all {} samples, which a capture of real \
                 traffic does not produce: the series looks generated, not captured",
                samples.len()
            );
            out.warn(file, samples_node.path(), message.clone());
            caveats.push(message);
        }

        let mut markers = Vec::new();
        if let Some(list) = root.opt("markers") {
            for item in list.array()? {
                let t = item.get("timestamp")?.f64()?;
                let label = item.get("label")?.str()?.to_string();
                markers.push(Marker { t_s: t, label });
            }
        }
        let machines = if file.folder_described {
            vec![file.folder_machine.clone()]
        } else {
            ["M5", "M4_Pro"]
                .iter()
                .filter_map(|n| seed_machine(n))
                .collect()
        };
        out.captures.push(TrafficCapture {
            source: file.provenance("$.samples"),
            name,
            machines,
            interface,
            sample_rate_hz,
            captured_at,
            duration_s,
            samples,
            markers,
            send_bytes,
            recv_bytes,
            totals_source,
            caveats,
        });
        Ok(())
    }
}

/// A byte counter of one sample, `None` when the sample has none.
fn counter(item: &Node, key: &str) -> Result<Option<f64>, ImportError> {
    Ok(item
        .opt(key)
        .map(|n| n.f64_or_missing())
        .transpose()?
        .flatten())
}

pub(super) struct FineTuneTrafficSummary;

impl Importer for FineTuneTrafficSummary {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark capture summary"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("traffic_summary").is_some()
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        let summary = root.get("traffic_summary")?;
        let mode = root
            .opt("mode")
            .map(|m| m.str().map(str::to_string))
            .transpose()?
            .unwrap_or_else(|| "unnamed".into());
        let samples = summary.opt("num_samples").map(|n| n.u64()).transpose()?;
        let mut peak = 0.0f64;
        for key in ["send_gbs", "recv_gbs", "total_gbs"] {
            if let Some(stats) = summary.opt(key) {
                for (_, v) in stats.entries()? {
                    if let Some(v) = v.f64_or_missing()? {
                        peak = peak.max(v.abs());
                    }
                }
            }
        }
        let described = samples
            .map(|n| format!("{n} samples"))
            .unwrap_or_else(|| "samples".into());
        if peak == 0.0 {
            out.warn(
                file,
                summary.path(),
                format!(
                    "the summary of the {mode} capture is 0 GB/s everywhere over {described}: \
                     the capture recorded nothing, so it says nothing about the link"
                ),
            );
        }
        out.not_imported = Some(format!(
            "summary of the {mode} fine-tune step's traffic capture ({described}); the capture \
             file itself is read as a time series"
        ));
        Ok(())
    }
}
