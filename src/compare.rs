//! `silirep compare A B`: a benchstat-style A/B table of every configuration both sides
//! measured — old and new rate, the change with its 95% CI, the test behind it and a verdict
//! ("~" where the change is not significant or stays within the run-to-run noise floor) — with
//! a geometric-mean row, as Markdown, CSV or JSON, and an exit status for CI gates
//! (`--fail-on-regression PCT`).
//!
//! A side is a run file, a folder of run files, or (with `--results`) a machine's label or id in
//! a results tree; it must hold one machine. The statistics are
//! [`silirep_stats::compare::compare_runs`]; docs/statistics.md states the method.

use crate::analysis::compare::ConfigKey;
use crate::analysis::history::{NoiseFloor, NoiseFloors};
use crate::analysis::{RateUnit, observations, rate_basis};
use crate::cli::{CompareArgs, CompareFormat};
use crate::ingest::{self, Dataset, MachineKey, Record};
use crate::util::format;
use anyhow::{Context, Result, bail};
use silirep_stats::Observations;
use silirep_stats::compare::{AbComparison, Change, MIN_RUNS_FOR_RUN_LEVEL, compare_runs};
use std::collections::BTreeMap;
use std::path::Path;

/// Exit status of a comparison that did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// `--fail-on-regression` found a significant slowdown beyond its threshold.
    Regression,
}

/// One configuration both sides measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub configuration: String,
    pub key: ConfigKey,
    pub unit: RateUnit,
    /// Rates (work / centre time): higher is better.
    pub old_rate: f64,
    pub new_rate: f64,
    /// new rate / old rate − 1: negative is slower.
    pub change: f64,
    pub change_lower: Option<f64>,
    pub change_upper: Option<f64>,
    pub noise_floor: NoiseFloor,
    pub comparison: AbComparison,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Table {
    pub old: String,
    pub new: String,
    pub rows: Vec<Row>,
    /// Geometric mean of new rate / old rate over every row, with its t-interval.
    pub geomean: Option<silirep_stats::GeoMean>,
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

pub fn run(args: &CompareArgs) -> Result<Outcome> {
    // Checked before anything is loaded: a typo in a CI gate must not print a table first.
    let threshold = args
        .fail_on_regression
        .as_deref()
        .map(parse_percent)
        .transpose()
        .context("--fail-on-regression")?;
    let tree = match &args.results {
        Some(dir) => Some(load(dir)?),
        None => None,
    };
    let (old_name, old) = side(&args.old, tree.as_ref())?;
    let (new_name, new) = side(&args.new, tree.as_ref())?;
    // Floors come from repeated runs the comparison can see: within the results tree, or
    // within each side — never from the old-vs-new difference itself, which would call any
    // change noise.
    let (old_floors, new_floors) = match (args.noise_floor.as_deref(), &tree) {
        (Some(text), _) => {
            let given = NoiseFloors::given(parse_percent(text).context("--noise-floor")?);
            (given.clone(), given)
        }
        (None, Some(t)) => (NoiseFloors::from_dataset(t), NoiseFloors::from_dataset(t)),
        (None, None) => (
            NoiseFloors::from_dataset(&old),
            NoiseFloors::from_dataset(&new),
        ),
    };
    let table = compare(old_name, &old, new_name, &new, (&old_floors, &new_floors))?;
    let text = match args.format {
        CompareFormat::Markdown => markdown(&table),
        CompareFormat::Csv => csv(&table),
        CompareFormat::Json => serde_json::to_string_pretty(&table)? + "\n",
    };
    print!("{text}");
    if let Some(threshold) = threshold {
        let regressions: Vec<&Row> = table
            .rows
            .iter()
            .filter(|r| r.comparison.change == Change::Slower && -r.change > threshold)
            .collect();
        if !regressions.is_empty() {
            eprintln!(
                "{} significant slowdown(s) beyond {} (after the noise floor):",
                regressions.len(),
                format::percent(threshold)
            );
            for r in regressions {
                eprintln!("  {}: {}", r.configuration, signed_percent(r.change));
            }
            return Ok(Outcome::Regression);
        }
    }
    Ok(Outcome::Ok)
}

/// Loads a results tree, a folder or a file; problems are printed per side (see [`side`]), so
/// a tree's unrelated files stay quiet.
fn load(path: &Path) -> Result<Dataset> {
    let mut d = ingest::load_dir(path)?;
    ingest::ensure_record_machines(&mut d);
    ingest::reconcile_machine_labels(&mut d);
    Ok(d)
}

/// A side's records: from a path when it exists, else a machine of the results tree.
fn side(spec: &str, tree: Option<&Dataset>) -> Result<(String, Dataset)> {
    let path = Path::new(spec);
    let (name, dataset) = if path.exists() {
        (spec.to_string(), load(path)?)
    } else {
        let Some(tree) = tree else {
            bail!("{spec}: no such file or folder (to name a machine, pass --results <dir>)");
        };
        let machine = tree
            .machine_named(spec)
            .map_err(|e| anyhow::anyhow!("{spec}: not a run file or folder, and {e}"))?;
        let (d, _) = tree.only_machines(std::slice::from_ref(machine));
        (machine.label.clone(), d)
    };
    for f in dataset.failed_files() {
        if let ingest::FileStatus::Failed { error } = &f.status {
            eprintln!("error: {}: {error}", f.file);
        }
    }
    for w in &dataset.warnings {
        eprintln!("warning: {w}");
    }
    let machines: std::collections::BTreeSet<&MachineKey> =
        dataset.records.iter().map(|r| &r.machine).collect();
    match machines.len() {
        0 => bail!("{spec}: no measurements found"),
        1 => Ok((name, dataset)),
        _ => bail!(
            "{spec}: holds {} machines ({}); compare one machine with another",
            machines.len(),
            machines
                .iter()
                .map(|m| m.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

type Runs<'a> = BTreeMap<ConfigKey, Vec<&'a Record>>;

fn by_config(d: &Dataset) -> Runs<'_> {
    let mut out: Runs = BTreeMap::new();
    for r in &d.records {
        if r.timing.is_some() && rate_basis(r).is_some() {
            out.entry(ConfigKey::of(r)).or_default().push(r);
        }
    }
    for runs in out.values_mut() {
        runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    }
    out
}

/// The table for `old` and `new` (one machine each).
pub fn compare(
    old_name: String,
    old: &Dataset,
    new_name: String,
    new: &Dataset,
    (old_floors, new_floors): (&NoiseFloors, &NoiseFloors),
) -> Result<Table> {
    let (old_runs, new_runs) = (by_config(old), by_config(new));
    let machine = |d: &Dataset| d.records[0].machine.clone();
    let (old_machine, new_machine) = (machine(old), machine(new));
    let mut rows = Vec::new();
    for (key, o) in &old_runs {
        let Some(n) = new_runs.get(key) else {
            continue;
        };
        let obs = |runs: &[&Record]| -> Vec<Observations> {
            runs.iter()
                .filter_map(|r| r.timing.as_ref().map(observations))
                .collect()
        };
        let floor = NoiseFloor::combine(
            old_floors.floor(&old_machine, key.family),
            new_floors.floor(&new_machine, key.family),
        );
        let c = compare_runs(&obs(o), &obs(n), floor.value)
            .with_context(|| format!("comparing {}", label(key)))?;
        let (unit, work) = rate_basis(o[0]).expect("filtered on a rate basis");
        // Rates are work / time, so the rate ratio is the inverse of the time ratio and the
        // CI bounds swap.
        rows.push(Row {
            configuration: label(key),
            key: key.clone(),
            unit,
            old_rate: work / c.old,
            new_rate: work / c.new,
            change: 1.0 / c.time_ratio - 1.0,
            change_lower: c.upper.map(|u| 1.0 / u - 1.0),
            change_upper: c.lower.map(|l| 1.0 / l - 1.0),
            noise_floor: floor,
            comparison: c,
        });
    }
    let ratios: Vec<f64> = rows.iter().map(|r| 1.0 + r.change).collect();
    let geomean = silirep_stats::geometric_mean_ratio(&ratios).ok();
    let missing = |a: &Runs, b: &Runs| -> Vec<String> {
        a.keys()
            .filter(|k| !b.contains_key(*k))
            .map(label)
            .collect()
    };
    Ok(Table {
        only_old: missing(&old_runs, &new_runs),
        only_new: missing(&new_runs, &old_runs),
        old: old_name,
        new: new_name,
        rows,
        geomean,
    })
}

fn label(key: &ConfigKey) -> String {
    let framework = if key.framework == "silirep" {
        String::new()
    } else {
        format!(" ({})", key.framework)
    };
    format!("{} {} {}{framework}", key.kernel, key.precision, key.params)
}

/// `60%`, `0.1`: a fraction.
fn parse_percent(text: &str) -> Result<f64> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>().map(|v| v / 100.0),
    }
    .map_err(|_| anyhow::anyhow!("expected a percentage such as 5 or 5%, found {text:?}"))?;
    if !(value.is_finite() && (0.0..10.0).contains(&value)) {
        bail!("expected a percentage between 0 and 1000, found {text:?}");
    }
    Ok(value)
}

fn signed_percent(change: f64) -> String {
    if change >= 0.0 {
        format!("+{}", format::percent(change))
    } else {
        format!("−{}", format::percent(-change))
    }
}

fn rate(value: f64, unit: RateUnit) -> String {
    match unit {
        RateUnit::TokenPerS => format!("{} {}", format::sig3(value), unit.symbol()),
        _ => format::si(value, unit.symbol()),
    }
}

fn runs_note(n: usize) -> String {
    if n > 1 {
        format!(" ({n} runs)")
    } else {
        String::new()
    }
}

/// The change column: the signed change, or `~` when it is not significant.
fn change_cell(r: &Row) -> String {
    match r.comparison.change {
        Change::Slower | Change::Faster => signed_percent(r.change),
        Change::NoChange | Change::WithinNoise => "~".into(),
        // No test: the point change, marked as such.
        Change::Untested => format!("{} ?", signed_percent(r.change)),
    }
}

fn ci_cell(r: &Row) -> String {
    match (r.change_lower, r.change_upper) {
        (Some(lo), Some(hi)) => format!("[{}, {}]", signed_percent(lo), signed_percent(hi)),
        _ => "no CI".into(),
    }
}

fn test_cell(r: &Row) -> String {
    let c = &r.comparison;
    match c.p_value {
        Some(p) => format!("{}, p={}", c.test.describe(), p_text(p)),
        None => c.test.describe().to_string(),
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn verdict_cell(r: &Row) -> String {
    match r.comparison.change {
        Change::Slower => "slower".into(),
        Change::Faster => "faster".into(),
        Change::NoChange => "~ (no significant difference)".into(),
        Change::WithinNoise => format!(
            "~ (within the ±{} noise floor)",
            format::percent(r.noise_floor.value)
        ),
        Change::Untested => "untested (single values)".into(),
    }
}

pub fn markdown(t: &Table) -> String {
    let mut out = format!(
        "old: {}\nnew: {}\n\n| configuration | old | new | change | 95% CI | test | verdict |\n|---|---|---|---|---|---|---|\n",
        format::markdown_text(&t.old),
        format::markdown_text(&t.new)
    );
    for r in &t.rows {
        out += &format!(
            "| {} | {}{} | {}{} | {} | {} | {} | {} |\n",
            format::markdown_text(&r.configuration),
            rate(r.old_rate, r.unit),
            runs_note(r.comparison.runs_old),
            rate(r.new_rate, r.unit),
            runs_note(r.comparison.runs_new),
            change_cell(r),
            ci_cell(r),
            test_cell(r),
            verdict_cell(r),
        );
    }
    if let Some(g) = &t.geomean {
        let ci = match (g.lower, g.upper) {
            (Some(lo), Some(hi)) => {
                format!(
                    "[{}, {}]",
                    signed_percent(lo - 1.0),
                    signed_percent(hi - 1.0)
                )
            }
            _ => "no CI".into(),
        };
        out += &format!(
            "| **geomean** ({} configurations) | | | {} | {ci} | t-interval on log ratios | |\n",
            g.count,
            signed_percent(g.value - 1.0)
        );
    }
    out += "\nChange is new rate / old rate − 1 (negative is slower). \"~\": not significant at the 5% level, \
            or significant but within the run-to-run noise floor; a significant change must have its whole \
            95% CI beyond the floor.\n";
    // Only floors some row was judged against: rows with three or more runs a side carry
    // their run-to-run noise themselves.
    let floors: std::collections::BTreeSet<String> = t
        .rows
        .iter()
        .filter(|r| r.comparison.noise_floor > 0.0)
        .map(|r| r.noise_floor.describe())
        .collect();
    for f in &floors {
        out += &format!("Noise floor: {f}.\n");
    }
    if floors.is_empty() && !t.rows.is_empty() {
        out += &format!(
            "No noise floor: every row has {MIN_RUNS_FOR_RUN_LEVEL} or more runs a side, resampled as runs.\n"
        );
    }
    if !t.only_old.is_empty() {
        out += &format!(
            "\nOnly in old ({}): {}\n",
            t.only_old.len(),
            t.only_old.join("; ")
        );
    }
    if !t.only_new.is_empty() {
        out += &format!(
            "\nOnly in new ({}): {}\n",
            t.only_new.len(),
            t.only_new.join("; ")
        );
    }
    out
}

pub fn csv(t: &Table) -> String {
    let mut out = String::new();
    let mut write_record = |fields: &[String]| {
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out += &quoted.join(",");
        out.push('\n');
    };
    let header = [
        "configuration",
        "unit",
        "old_rate",
        "new_rate",
        "runs_old",
        "runs_new",
        "change",
        "change_ci_lower",
        "change_ci_upper",
        "test",
        "p_value",
        "noise_floor",
        "verdict",
    ];
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    write_record(&header.map(String::from));
    for r in &t.rows {
        write_record(&[
            r.configuration.clone(),
            r.unit.symbol().to_string(),
            r.old_rate.to_string(),
            r.new_rate.to_string(),
            r.comparison.runs_old.to_string(),
            r.comparison.runs_new.to_string(),
            r.change.to_string(),
            opt(r.change_lower),
            opt(r.change_upper),
            r.comparison.test.describe().to_string(),
            opt(r.comparison.p_value),
            r.noise_floor.value.to_string(),
            format!("{:?}", r.comparison.change),
        ]);
    }
    if let Some(g) = &t.geomean {
        write_record(&[
            "geomean".to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            (g.value - 1.0).to_string(),
            opt(g.lower.map(|l| l - 1.0)),
            opt(g.upper.map(|u| u - 1.0)),
            "t-interval on log ratios".to_string(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    out
}

/// RFC 4180: quoted when it holds a comma, quote or line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        assert_eq!(parse_percent("5").unwrap(), 0.05);
        assert_eq!(parse_percent("2.5%").unwrap(), 0.025);
        assert!(parse_percent("fast").is_err());
        assert!(parse_percent("-1").is_err());
    }

    #[test]
    fn signed_percentages_read_as_changes() {
        assert_eq!(signed_percent(-0.081), "−8.1%");
        assert_eq!(signed_percent(0.005), "+0.5%");
    }
}
