//! `silirep predict`: the model-level predictions of a report, for the machines and the link a
//! user names on the command line — one machine's bounds (`--machine`), or a prefill machine, a
//! decode machine and the link between them (`--prefill A --decode B --link 37.6Gbps`).
//!
//! Orchestration only, like the report: roofs come from the machines' own rooflines
//! ([`crate::analysis::predictions`]), the maths from `silirep-model`, the wording and every
//! number from the report's own view ([`crate::render::pages::predictions`]), so the command
//! and the report never disagree.

use crate::analysis::catalog::Catalog;
use crate::analysis::predictions::{self, ConfiguredLink, ModelRequest};
use crate::cli::PredictArgs;
use crate::ingest::{self, Dataset, MachineKey};
use crate::render::pages::predictions::{ModelLevelView, model_level_view};
use anyhow::{Context, Result, bail};

pub fn run(args: &PredictArgs) -> Result<()> {
    let request = ModelRequest {
        model: predictions::preset(&args.model).map_err(|e| anyhow::anyhow!("--model: {e}"))?,
        prompt_tokens: positive(args.prompt_tokens, "--prompt-tokens")?,
        new_tokens: positive(args.new_tokens, "--new-tokens")?,
    };
    let link = args.link.as_deref().map(parse_link).transpose()?;
    let machines = match (&args.machine, &args.prefill, &args.decode) {
        (Some(m), None, None) => vec![m.as_str()],
        (None, Some(p), Some(d)) => vec![p.as_str(), d.as_str()],
        (None, Some(_), None) | (None, None, Some(_)) => {
            bail!("--prefill and --decode go together: name the machine for each phase")
        }
        (Some(_), _, _) => bail!("--machine predicts one machine; leave out --prefill/--decode"),
        (None, None, None) => bail!(
            "name a machine (--machine X) or a pair (--prefill A --decode B); the machines in \
             {} are: {}",
            args.results.display(),
            load(args)?.machine_list()
        ),
    };
    if link.is_some() && machines.len() == 1 {
        bail!("--link joins two machines: use it with --prefill and --decode");
    }
    let mut dataset = load(args)?;
    let keys: Vec<MachineKey> = machines
        .iter()
        .map(|name| {
            dataset
                .machine_named(name)
                .cloned()
                .map_err(|e| anyhow::anyhow!(e))
        })
        .collect::<Result<_>>()?;
    if keys.len() == 2 && keys[0] == keys[1] {
        bail!(
            "--prefill and --decode name the same machine ({}); for one machine use --machine",
            keys[0].label
        );
    }
    let catalog = match &args.catalog {
        Some(path) => Catalog::with_user_file(path)?,
        None => Catalog::built_in(),
    };
    let (subset, _) = dataset.only_machines(&keys);
    dataset = subset;
    let rates = crate::analysis::rates(&dataset);
    let rooflines = crate::analysis::rooflines::rooflines(&dataset, &catalog);
    let predicted = predictions::predict(
        &dataset,
        &rates,
        &rooflines,
        &catalog,
        &request,
        link.as_ref(),
    );
    if args.json {
        let json = serde_json::json!({
            "request": &predicted.request,
            "prefill_on": keys.first().filter(|_| keys.len() == 2),
            "decode_on": keys.get(1),
            "machines": &predicted.machines,
            "measured": &predicted.efficiencies,
            "pair": &predicted.pair,
            "pair_missing": &predicted.pair_missing,
        });
        return write_stdout(&format!("{}\n", serde_json::to_string_pretty(&json)?));
    }
    let view = model_level_view(&predicted);
    write_stdout(&text(&view, &keys))
}

/// Stdout closed early (`| head`) ends the output, not the program with a panic.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

fn positive(value: u64, flag: &str) -> Result<u64> {
    if value == 0 {
        bail!("{flag} must be at least 1, found 0");
    }
    Ok(value)
}

fn load(args: &PredictArgs) -> Result<Dataset> {
    let mut dataset = ingest::load_dir(&args.results)?;
    ingest::ensure_record_machines(&mut dataset);
    ingest::reconcile_machine_labels(&mut dataset);
    Ok(dataset)
}

/// `37.6Gbps`, `37.6 Gbit/s`, `4.7GB/s`, `400Mbps`: bits or bytes per second with a decimal
/// prefix, as link speeds are quoted.
pub fn parse_link(text: &str) -> Result<ConfiguredLink> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().with_context(|| {
        format!("--link {text:?}: expected a number with a unit, e.g. 37.6Gbps or 4.7GB/s")
    })?;
    let bits_per_unit = match unit.trim() {
        "Gbps" | "Gbit/s" | "Gb/s" => 1e9,
        "Mbps" | "Mbit/s" | "Mb/s" => 1e6,
        "Tbps" | "Tbit/s" => 1e12,
        "GB/s" | "GBps" => 8e9,
        "MB/s" | "MBps" => 8e6,
        "TB/s" => 8e12,
        other => bail!(
            "--link {text:?}: unknown unit {other:?}; use bits (Mbps, Gbps, Gbit/s) or bytes \
             (MB/s, GB/s) per second"
        ),
    };
    let gbit_per_s = value * bits_per_unit / 1e9;
    if !(gbit_per_s.is_finite() && gbit_per_s > 0.0) {
        bail!("--link {text:?}: the bandwidth must be positive");
    }
    Ok(ConfiguredLink {
        name: "the link given".into(),
        gbit_per_s,
        source: format!("the rate given with --link {t}, not checked against any record"),
    })
}

/// The plain-text answer: a table per question, the report's wording.
fn text(view: &ModelLevelView, keys: &[MachineKey]) -> String {
    let mut out = format!("{}\n\n", view.request);
    out.push_str("Roofs:\n");
    out.push_str(&table(
        &["machine", "roof", "rate", "source"],
        view.roofs
            .iter()
            .map(|r| {
                vec![
                    r.machine.clone(),
                    r.roof.clone(),
                    r.rate.clone(),
                    r.source.clone(),
                ]
            })
            .collect(),
    ));
    if let (Some(pair), [prefill, decode]) = (&view.pair, keys) {
        out.push_str(&format!("\nLink: {}\n", pair.link));
        if let Some(missing) = &pair.missing {
            out.push_str(&format!("no plan: {missing}\n"));
            return out;
        }
        let asked = format!("prefill on {} → decode on {}", prefill.label, decode.label);
        out.push('\n');
        out.push_str(&table(
            &[
                "option",
                "TTFT",
                "decode tok/s (binding roof)",
                "end to end",
                "prefill (binding roof)",
            ],
            pair.options
                .iter()
                .map(|o| {
                    let mark = if o.placement == asked { " ◀" } else { "" };
                    vec![
                        format!("{}{mark}", o.placement),
                        o.ttft.clone(),
                        o.decode.clone(),
                        o.end_to_end.clone(),
                        o.prefill.clone(),
                    ]
                })
                .collect(),
        ));
        out.push_str(&format!("\n{}\n{}\n", pair.verdict, pair.break_even));
        for s in &pair.measured_split {
            out.push_str(&format!("measured: {s}\n"));
        }
        out.push_str("\nTraining across both:\n");
        out.push_str(&table(
            &["strategy", "work share", "step", "link time", "bound by"],
            pair.training
                .iter()
                .map(|t| {
                    vec![
                        t.strategy.clone(),
                        t.share.clone(),
                        t.step.clone(),
                        t.link_time.clone(),
                        t.bound_by.clone(),
                    ]
                })
                .collect(),
        ));
        return out;
    }
    out.push_str(&format!(
        "\nPredictions (decode batches {}; training: {}):\n",
        view.decode_batches, view.training_job
    ));
    for m in &view.machines {
        if let Some(missing) = &m.missing {
            out.push_str(&format!("{}: no prediction: {missing}\n", m.machine));
            continue;
        }
        out.push_str(&table(
            &["machine", "prediction", "value (binding roof)"],
            vec![
                vec![m.machine.clone(), "prefill".into(), m.prefill.clone()],
                vec![String::new(), "TTFT".into(), m.ttft.clone()],
                vec![
                    String::new(),
                    "decode tok/s by batch".into(),
                    m.decode.clone(),
                ],
                vec![String::new(), "end to end".into(), m.end_to_end.clone()],
                vec![String::new(), "training step".into(), m.training.clone()],
                vec![
                    String::new(),
                    "largest preset that fits".into(),
                    m.fits.clone(),
                ],
            ],
        ));
    }
    if !view.efficiencies.is_empty() {
        out.push_str("\nMeasured beside the bound:\n");
        out.push_str(&table(
            &[
                "workload",
                "parameters",
                "framework",
                "measured",
                "bound",
                "efficiency",
            ],
            view.efficiencies
                .iter()
                .map(|e| {
                    vec![
                        e.workload.clone(),
                        e.params.clone(),
                        e.framework.clone(),
                        e.measured.clone(),
                        e.bound.clone(),
                        e.efficiency.clone(),
                    ]
                })
                .collect(),
        ));
    }
    out
}

/// Columns padded to their widest cell (in characters).
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_take_bits_or_bytes_per_second() {
        let gbit = |t: &str| parse_link(t).unwrap().gbit_per_s;
        assert!((gbit("37.6Gbps") - 37.6).abs() < 1e-12);
        assert!((gbit("37.6 Gbit/s") - 37.6).abs() < 1e-12);
        assert!((gbit("4.7GB/s") - 37.6).abs() < 1e-12);
        assert!((gbit("400Mbps") - 0.4).abs() < 1e-12);
        let e = parse_link("40Gb").unwrap_err().to_string();
        assert!(e.contains("unknown unit \"Gb\""), "{e}");
        assert!(parse_link("0Gbps").is_err());
        assert!(parse_link("fast").is_err());
    }

    #[test]
    fn tables_pad_columns() {
        let t = table(&["a", "bb"], vec![vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "a    bb\nxyz  1\n");
    }
}
