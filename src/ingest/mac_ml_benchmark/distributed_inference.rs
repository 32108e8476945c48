//! `baseline_M5.json`, `prefill_results.json`, `ray_disaggregated_results.json`: Mistral-7B
//! inference run three times on one machine (`role: baseline`) or split over two (`prefill`:
//! prefill on the M5, KV cache sent over raw TCP; `ray_disaggregated`: prefill on the M5,
//! KV cache moved through Ray, decode on the M4 Pro).
//!
//! Each file has per-run numbers (`all_runs`) and a summary (`averaged`). Records are built
//! from the runs; the summary is checked against them, and every disagreement is a warning
//! naming the JSON path and both numbers:
//! - an `averaged` value that is not the mean of its runs;
//! - a run's tokens/s that is not its generated tokens over its decode time;
//! - a rate averaged over runs (the mean of per-run rates) that differs from the rate over all
//!   runs (total tokens or bytes over total time), which is what silirep reports.
//!
//! Records, each with notes saying what its number is:
//! - prefill (`ModelPhase::Prefill`, seq_len = tokens = prompt tokens): one sample per run;
//!   TTFT (prefill plus the first decode step, plus the KV move when disaggregated) is kept in
//!   `reported.ttft_s`, never presented as the prefill time;
//! - decode (`Decode`, one token per iteration): the per-token latencies where the file keeps
//!   them, else each run's decode time over its generated tokens;
//! - KV transfer (`KvTransfer`, tokens = prompt tokens): one sample per run, the KV cache's
//!   bytes in `reported.kv_bytes`;
//! - end to end (`EndToEnd`): one sample per run when every run generated the same number of
//!   tokens, else one value, total tokens over total time.

use super::*;
use crate::ingest::node::Node;

pub(super) struct DistributedInference;

/// The file's `kv_size_mb` is MiB: its own `tb_throughput_gbps` is kv_size_mb · 2²⁰ · 8 bits
/// over the transfer time.
const MIB: f64 = 1024.0 * 1024.0;

/// Relative difference below which two numbers the file states are the same number
/// (they are written with 15 or more significant digits).
const SAME: f64 = 1e-6;

/// Where a rate over all runs and the file's mean of per-run rates may differ before the
/// difference is worth a warning.
const RATE_AGREEMENT: f64 = 0.001;

impl Importer for DistributedInference {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark distributed inference"
    }

    fn recognises(&self, file: &FileView) -> bool {
        file.doc.get("all_runs").is_some_and(|r| r.is_array())
            && file
                .doc
                .get("role")
                .and_then(|r| r.as_str())
                .is_some_and(|r| matches!(r, "baseline" | "prefill" | "ray_disaggregated"))
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        let root = file.root();
        let role_node = root.get("role")?;
        let role = role_node.str()?;
        let model = root.get("model")?.str()?.to_string();
        let prompt_tokens = root.get("prompt_tokens")?.u64()?;
        let runs = root.get("all_runs")?.array()?;
        if runs.is_empty() {
            return Err(root.get("all_runs")?.error("at least one run").into());
        }
        let precision = match root.opt("dtype") {
            Some(d) => d.str()?.to_string(),
            None => "float16".to_string(),
        };
        let precision_note = (!root.has("dtype")).then(|| {
            "the file states no dtype: float16 assumed, as in the project's other inference files"
                .to_string()
        });
        let (prefill_machine, decode_machine) = machines(&root, role)?;
        let ctx = Context {
            file,
            model,
            precision,
            precision_note,
            prompt_tokens,
        };
        if let Some(averaged) = root.opt("averaged") {
            check_averages(out, file, &averaged, &runs)?;
        }
        for run in &runs {
            if let Some(p) = run.opt("prompt_tokens")
                && p.u64()? != prompt_tokens
            {
                out.warn(
                    file,
                    p.path(),
                    format!(
                        "this run's prompt has {} tokens, the file's prompt_tokens is {prompt_tokens}",
                        p.u64()?
                    ),
                );
            }
        }

        let mut prefill = ctx.record(
            &prefill_machine,
            ModelPhase::Prefill,
            prompt_tokens,
            per_run_seconds(&runs, "prefill_time_ms")?,
            "$.all_runs[*].prefill_time_ms",
        );
        prefill.notes.push(
            "prefill: the prompt's forward pass as the file times it (prefill_time_ms), one \
             sample per run; time to first token is kept apart as reported ttft_s"
                .into(),
        );
        if let Some(ttft) = mean_of_runs(&runs, "ttft_ms")? {
            prefill.reported.insert("ttft_s".into(), ttft / 1e3);
        }
        out.records.push(prefill);

        let decode_runs: Vec<&Node> = runs.iter().filter(|r| r.has("decode_time_ms")).collect();
        if !decode_runs.is_empty() {
            let mut decode = decode_record(out, &ctx, &decode_machine, &root, &decode_runs)?;
            if role == "ray_disaggregated" {
                decode.notes.push(
                    "decoded on the M4 Pro from a KV cache the M5 computed (decode_machine)".into(),
                );
            }
            out.records.push(decode);
            let end_to_end = end_to_end_record(out, &ctx, &prefill_machine, &decode_runs, role)?;
            out.records.push(end_to_end);
        }
        match role {
            "prefill" => {
                let transfer = tcp_transfer_record(out, &ctx, &prefill_machine, &runs)?;
                out.records.push(transfer);
                if let Some(results) = root.opt("decode_results") {
                    decode_results(
                        out,
                        &ctx,
                        &prefill_machine,
                        &decode_machine,
                        &root,
                        &results,
                    )?;
                }
            }
            "ray_disaggregated" => {
                let transfer = ray_transfer_record(out, &ctx, &prefill_machine, &root, &runs)?;
                out.records.push(transfer);
            }
            _ => {}
        }
        Ok(())
    }
}

struct Context<'f, 'a> {
    file: &'f FileView<'a>,
    model: String,
    precision: String,
    precision_note: Option<String>,
    prompt_tokens: u64,
}

impl Context<'_, '_> {
    fn record(
        &self,
        machine: &MachineKey,
        phase: ModelPhase,
        tokens: u64,
        timing: Option<Timing>,
        json_path: &str,
    ) -> Record {
        let builder = RecordBuilder {
            file: self.file,
            framework: "pytorch_mps".into(),
        };
        let spec = KernelSpec::Model {
            model: self.model.clone(),
            phase,
            precision: self.precision.clone(),
            batch: 1,
            seq_len: self.prompt_tokens,
            tokens,
            params: None,
        };
        let mut record = builder.record(spec, timing, json_path);
        record.machine = machine.clone();
        record.notes.extend(self.precision_note.clone());
        if record.timing.is_none() {
            record.error = Some("no usable time in any run".into());
        }
        record
    }
}

/// The seed's two machines under the names the distributed files use for them (`M5`,
/// `M4_Pro`), with the ids and labels their folders' `system_info.json` give them (Apple M5,
/// model Mac17,2; Apple M4 Pro, model Mac16,8), so these records join those machines.
pub(super) fn seed_machine(name: &str) -> Option<MachineKey> {
    let normalised = slug(name);
    let (id, label) = match normalised.as_str() {
        "m5" | "apple-m5" => ("apple-m5-mac17-2", "Apple M5"),
        "m4-pro" | "m4pro" | "apple-m4-pro" => ("apple-m4-pro-mac16-8", "Apple M4 Pro"),
        _ => return None,
    };
    Some(MachineKey {
        id: id.into(),
        label: label.into(),
    })
}

fn named_machine(node: &Node) -> Result<MachineKey, ImportError> {
    let name = node.str()?;
    seed_machine(name).ok_or_else(|| ImportError::Invalid {
        path: node.path().to_string(),
        message: format!(
            "expected one of the project's machines (\"M5\", \"M4_Pro\"), found {name:?}"
        ),
    })
}

/// (prefill machine, decode machine) as the file names them.
fn machines(root: &Node, role: &str) -> Result<(MachineKey, MachineKey), ImportError> {
    if let Some(prefill) = root.opt("prefill_machine") {
        let prefill = named_machine(&prefill)?;
        let decode = match root.opt("decode_machine") {
            Some(d) => named_machine(&d)?,
            None => prefill.clone(),
        };
        return Ok((prefill, decode));
    }
    let machine = named_machine(&root.get("machine")?)?;
    let decode = if role == "prefill" {
        // The file names only the machine that prefilled; its decode ran on the other one.
        seed_machine("M4_Pro").expect("a known name")
    } else {
        machine.clone()
    };
    Ok((machine, decode))
}

/// Every numeric `averaged` value that every run also has must be the mean of the runs.
fn check_averages(
    out: &mut Imported,
    file: &FileView,
    averaged: &Node,
    runs: &[Node],
) -> Result<(), ImportError> {
    for (key, node) in averaged.entries()? {
        let Some(stated) = node.f64_or_missing()? else {
            continue;
        };
        let Some(mean) = mean_of_runs(runs, key)? else {
            continue;
        };
        if !same(stated, mean) {
            out.warn(
                file,
                node.path(),
                format!(
                    "the average {stated} is not the mean of the runs' {key} ({mean}): the \
                     summary and the runs disagree; silirep uses the runs"
                ),
            );
        }
    }
    Ok(())
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= SAME * a.abs().max(b.abs())
}

/// Mean of `key` over the runs, `None` unless every run has it.
fn mean_of_runs(runs: &[Node], key: &str) -> Result<Option<f64>, ImportError> {
    let mut values = Vec::new();
    for run in runs {
        match run.opt(key) {
            Some(n) => match n.f64_or_missing()? {
                Some(v) => values.push(v),
                None => return Ok(None),
            },
            None => return Ok(None),
        }
    }
    Ok((!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64))
}

/// A time in milliseconds that can be used: finite and positive.
fn positive_ms(node: &Node) -> Result<f64, ImportError> {
    match node.f64_or_missing()? {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(node.error("a positive time in milliseconds").into()),
    }
}

/// One sample per run: `key` in seconds.
fn per_run_seconds(runs: &[Node], key: &str) -> Result<Option<Timing>, ImportError> {
    let mut samples = Vec::new();
    for run in runs {
        samples.push(positive_ms(&run.get(key)?)? / 1e3);
    }
    Ok((!samples.is_empty()).then_some(Timing::Samples(samples)))
}

fn decode_record(
    out: &mut Imported,
    ctx: &Context,
    machine: &MachineKey,
    root: &Node,
    runs: &[&Node],
) -> Result<Record, ImportError> {
    let file = ctx.file;
    let mut total_tokens = 0u64;
    let mut total_s = 0.0;
    let mut per_run_s_per_token = Vec::new();
    let mut latencies = Vec::new();
    let mut kept_per_run = Vec::new();
    for run in runs {
        let time_ms = positive_ms(&run.get("decode_time_ms")?)?;
        let generated_node = run.get("generated_tokens")?;
        let generated = generated_node.u64()?;
        if generated == 0 {
            return Err(generated_node.error("a positive token count").into());
        }
        total_tokens += generated;
        total_s += time_ms / 1e3;
        per_run_s_per_token.push(time_ms / 1e3 / generated as f64);
        if let Some(rate_node) = run.opt("tokens_per_sec") {
            let stated = rate_node.f64()?;
            let ours = generated as f64 / (time_ms / 1e3);
            if (stated - ours).abs() > 0.005 * ours {
                out.warn(
                    file,
                    rate_node.path(),
                    format!(
                        "tokens/s {stated:.4} is not generated_tokens / decode_time ({generated} / \
                         {:.3} s = {ours:.4})",
                        time_ms / 1e3
                    ),
                );
            }
        }
        if let Some(per_token) = run.opt("per_token_times_ms") {
            let items = per_token.array()?;
            kept_per_run.push(items.len());
            for item in &items {
                latencies.push(positive_ms(item)? / 1e3);
            }
        }
    }
    let overall_rate = total_tokens as f64 / total_s;
    let has_latencies = !latencies.is_empty() && kept_per_run.len() == runs.len();
    let (timing, path, mut notes) = if has_latencies {
        let kept: Vec<String> = kept_per_run.iter().map(|n| n.to_string()).collect();
        (
            Timing::Samples(latencies),
            "$.all_runs[*].per_token_times_ms",
            vec![format!(
                "decode: samples are per-token latencies, the first {} tokens of each run \
                 (the file keeps no more); over whole runs, {total_tokens} tokens in {total_s:.2} s \
                 = {overall_rate:.3} tokens/s (reported tokens_per_s_over_runs)",
                kept.join(", ")
            )],
        )
    } else {
        (
            Timing::Samples(per_run_s_per_token),
            "$.all_runs[*].decode_time_ms",
            vec![format!(
                "decode: one sample per run, its decode time over its generated tokens (the \
                 file keeps no per-token latencies); over all runs {total_tokens} tokens in \
                 {total_s:.2} s = {overall_rate:.3} tokens/s"
            )],
        )
    };
    let mut record = ctx.record(machine, ModelPhase::Decode, 1, Some(timing), path);
    record.notes.append(&mut notes);
    record
        .reported
        .insert("tokens_per_s_over_runs".into(), overall_rate);
    if let Some(avg) = root.opt("averaged").and_then(|a| a.opt("tokens_per_sec")) {
        let stated = avg.f64()?;
        record
            .reported
            .insert("tokens_per_s_file_average".into(), stated);
        if (stated - overall_rate).abs() > RATE_AGREEMENT * overall_rate {
            out.warn(
                file,
                avg.path(),
                format!(
                    "the file's average decode rate {stated:.4} tokens/s is the mean of per-run \
                     rates; total tokens over total decode time is {overall_rate:.4} tokens/s \
                     ({total_tokens} tokens in {total_s:.3} s). A mean of rates weighs a short \
                     run like a long one; silirep reports the rate over all runs"
                ),
            );
        }
    }
    Ok(record)
}

fn end_to_end_record(
    out: &mut Imported,
    ctx: &Context,
    machine: &MachineKey,
    runs: &[&Node],
    role: &str,
) -> Result<Record, ImportError> {
    let mut generated = Vec::new();
    let mut times = Vec::new();
    for run in runs {
        generated.push(run.get("generated_tokens")?.u64()?);
        times.push(positive_ms(&run.get("total_e2e_ms")?)? / 1e3);
    }
    let all_same = generated.windows(2).all(|w| w[0] == w[1]);
    let (tokens, timing, how) = if all_same {
        (
            generated[0],
            Timing::Samples(times),
            "one sample per run".to_string(),
        )
    } else {
        let total_tokens: u64 = generated.iter().sum();
        let total_s: f64 = times.iter().sum();
        let counts: Vec<String> = generated.iter().map(|g| g.to_string()).collect();
        out.warn_at(
            ctx.file.rel_path,
            "$.all_runs[*].total_e2e_ms",
            format!(
                "runs generated different numbers of tokens ({}): the end-to-end record is one \
                 value, {total_tokens} tokens over {total_s:.3} s in all, without a spread",
                counts.join(", ")
            ),
        );
        (
            total_tokens,
            Timing::Single(total_s),
            format!(
                "one value over all runs ({} tokens generated)",
                counts.join(", ")
            ),
        )
    };
    let mut record = ctx.record(
        machine,
        ModelPhase::EndToEnd,
        tokens,
        Some(timing),
        "$.all_runs[*].total_e2e_ms",
    );
    record.notes.push(format!(
        "end to end: prompt in to last token out (total_e2e_ms), {how}; tokens are the tokens \
         generated"
    ));
    if role == "ray_disaggregated" {
        record.notes.push(
            "spans both machines: prefill on the M5, KV move through Ray, decode on the M4 Pro"
                .into(),
        );
    }
    Ok(record)
}

/// `prefill_results.json`: the KV cache sent over raw TCP after each prefill.
fn tcp_transfer_record(
    out: &mut Imported,
    ctx: &Context,
    machine: &MachineKey,
    runs: &[Node],
) -> Result<Record, ImportError> {
    let file = ctx.file;
    let mut times = Vec::new();
    let mut kv_bytes = Vec::new();
    let mut total_bytes = 0.0;
    for run in runs {
        let time_s = positive_ms(&run.get("transfer_time_ms")?)? / 1e3;
        let size_node = run.get("kv_size_mb")?;
        let bytes = size_node.f64()? * MIB;
        if !(bytes.is_finite() && bytes > 0.0) {
            return Err(size_node.error("a positive size in MiB").into());
        }
        if let Some(gbps_node) = run.opt("tb_throughput_gbps") {
            let stated = gbps_node.f64()?;
            let ours = bytes * 8.0 / time_s / 1e9;
            if (stated - ours).abs() > 0.005 * ours {
                out.warn(
                    file,
                    gbps_node.path(),
                    format!(
                        "{stated:.4} Gbit/s is not kv_size_mb (MiB) over transfer_time_ms \
                         ({ours:.4} Gbit/s)"
                    ),
                );
            }
        }
        times.push(time_s);
        kv_bytes.push(bytes);
        total_bytes += bytes;
    }
    let total_s: f64 = times.iter().sum();
    let over_runs_bps = total_bytes / total_s;
    let mut record = ctx.record(
        machine,
        ModelPhase::KvTransfer,
        ctx.prompt_tokens,
        Some(Timing::Samples(times)),
        "$.all_runs[*].transfer_time_ms",
    );
    record.notes.push(format!(
        "KV transfer: the prompt's KV cache ({:.2} MiB) sent from the M5 over raw TCP on the \
         Thunderbolt bridge (transfer_time_ms; serialising is timed apart as serialize_time_ms), \
         one sample per run; spans both machines; over all runs {:.3} Gbit/s",
        kv_bytes[0] / MIB,
        over_runs_bps * 8.0 / 1e9
    ));
    record.reported.insert("kv_bytes".into(), kv_bytes[0]);
    record
        .reported
        .insert("link_bytes_per_s_over_runs".into(), over_runs_bps);
    if let Some(serialize) = mean_of_runs(runs, "serialize_time_ms")? {
        record
            .reported
            .insert("serialize_s".into(), serialize / 1e3);
    }
    let averaged = file.root().opt("averaged");
    if let Some(avg) = averaged.as_ref().and_then(|a| a.opt("tb_throughput_gbps")) {
        let stated = avg.f64()?;
        let ours = over_runs_bps * 8.0 / 1e9;
        record
            .reported
            .insert("link_bytes_per_s_file_average".into(), stated * 1e9 / 8.0);
        if (stated - ours).abs() > RATE_AGREEMENT * ours {
            out.warn(
                file,
                avg.path(),
                format!(
                    "the file's average throughput {stated:.4} Gbit/s is the mean of per-run \
                     rates; the KV bytes of all runs over their total transfer time give \
                     {ours:.4} Gbit/s. A mean of rates weighs a fast short transfer like a slow \
                     long one; silirep reports the rate over all runs"
                ),
            );
        }
    }
    Ok(record)
}

/// `prefill_results.json`'s `decode_results`: one summary of the decode side, no runs.
fn decode_results(
    out: &mut Imported,
    ctx: &Context,
    prefill_machine: &MachineKey,
    decode_machine: &MachineKey,
    root: &Node,
    results: &Node,
) -> Result<(), ImportError> {
    let file = ctx.file;
    let decode_ms = positive_ms(&results.get("decode_time_ms")?)?;
    let generated_node = results.get("generated_tokens")?;
    let generated = generated_node.u64()?;
    if generated == 0 {
        return Err(generated_node.error("a positive token count").into());
    }
    let ours = generated as f64 / (decode_ms / 1e3);
    if let Some(rate) = results.opt("tokens_per_sec") {
        let stated = rate.f64()?;
        if (stated - ours).abs() > 0.005 * ours {
            out.warn(
                file,
                rate.path(),
                format!(
                    "tokens/s {stated:.4} is not generated_tokens / decode_time_ms \
                     ({generated} / {:.3} s = {ours:.4}); silirep uses the tokens over the time",
                    decode_ms / 1e3
                ),
            );
        }
    }
    // The summary repeats some averages of `averaged`; where it does not match them, it was
    // taken over other runs than `all_runs`.
    if let Some(averaged) = root.opt("averaged") {
        for (key, node) in results.entries()? {
            let Some(avg) = averaged.opt(key) else {
                continue;
            };
            let (Some(a), Some(b)) = (node.f64_or_missing()?, avg.f64_or_missing()?) else {
                continue;
            };
            if !same(a, b) {
                out.warn(
                    file,
                    node.path(),
                    format!(
                        "{a} differs from {} ({b}): the decode summary was not taken over the \
                         runs in all_runs",
                        avg.path()
                    ),
                );
            }
        }
    }
    let json_path = format!("{}.decode_time_ms", results.path());
    let mut decode = ctx.record(
        decode_machine,
        ModelPhase::Decode,
        1,
        Some(Timing::Single(decode_ms / 1e3 / generated as f64)),
        &json_path,
    );
    decode.notes.push(format!(
        "decode: one summary (decode_results), {generated} tokens in {:.3} s, as mean seconds per \
         token; no runs or per-token latencies published. The file does not name the decoding \
         machine: the project's disaggregated runs decode on the M4 Pro",
        decode_ms / 1e3
    ));
    out.records.push(decode);
    if let Some(e2e) = results.opt("total_e2e_ms") {
        let e2e_ms = positive_ms(&e2e)?;
        let mut record = ctx.record(
            prefill_machine,
            ModelPhase::EndToEnd,
            generated,
            Some(Timing::Single(e2e_ms / 1e3)),
            e2e.path(),
        );
        record.notes.push(
            "end to end: one summary (decode_results.total_e2e_ms): prefill on the M5, KV cache \
             over raw TCP, decode on the M4 Pro; spans both machines"
                .into(),
        );
        if let Some(ttft) = results.opt("ttft_ms") {
            record
                .reported
                .insert("ttft_s".into(), positive_ms(&ttft)? / 1e3);
        }
        out.records.push(record);
    }
    Ok(())
}

/// `ray_disaggregated_results.json`: the KV cache's move, stage by stage.
fn ray_transfer_record(
    out: &mut Imported,
    ctx: &Context,
    machine: &MachineKey,
    root: &Node,
    runs: &[Node],
) -> Result<Record, ImportError> {
    const STAGES: [&str; 5] = [
        "mps_to_cpu_ms",
        "ray_put_ms",
        "ray_overhead_ms",
        "ray_deser_ms",
        "to_mps_time_ms",
    ];
    let mut times = Vec::new();
    let mut kv_bytes = None;
    for run in runs {
        let mut total_ms = 0.0;
        for stage in STAGES {
            let node = run.get(stage)?;
            match node.f64_or_missing()? {
                Some(v) if v.is_finite() && v >= 0.0 => total_ms += v,
                _ => return Err(node.error("a non-negative time in milliseconds").into()),
            }
        }
        times.push(total_ms / 1e3);
        if let Some(size) = run.opt("kv_size_mb") {
            kv_bytes = Some(size.f64()? * MIB);
        }
    }
    if let Some(avg) = root
        .opt("averaged")
        .and_then(|a| a.opt("total_transfer_overhead_ms"))
    {
        let stated = avg.f64()?;
        let mean = times.iter().sum::<f64>() / times.len() as f64 * 1e3;
        if !(stated - mean).abs().le(&(1e-6 * mean.max(1.0))) {
            out.warn(
                ctx.file,
                avg.path(),
                format!(
                    "the average transfer overhead {stated} ms is not the mean of the runs' \
                     stage sums ({mean} ms)"
                ),
            );
        }
    }
    let mut record = ctx.record(
        machine,
        ModelPhase::KvTransfer,
        ctx.prompt_tokens,
        Some(Timing::Samples(times)),
        "$.all_runs[*]",
    );
    record.notes.push(format!(
        "KV transfer: the KV cache moved from the M5's GPU to the M4 Pro's through Ray, per run \
         the sum of {}; spans both machines",
        STAGES.join(" + ")
    ));
    if let Some(bytes) = kv_bytes {
        record.reported.insert("kv_bytes".into(), bytes);
    }
    Ok(record)
}
