//! `silirep report`: load → analyse → render → write (or `--check`).

use crate::cli::ReportArgs;
use crate::ingest::{self, Dataset, FileStatus};
use crate::render::{inventory, output::OutputSet};
use anyhow::{Context, Result};

/// Exit status of a report run that did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// `--strict` found problems, or `--check` found stale files.
    Problems,
}

pub fn run(args: &ReportArgs) -> Result<Outcome> {
    let mut dataset = ingest::load_dir(&args.results)?;
    ingest::ensure_record_machines(&mut dataset);
    print_problems(&dataset);
    if args.strict && dataset.problem_count() > 0 {
        eprintln!(
            "error: {} problem(s) in {} and --strict is set; nothing written",
            dataset.problem_count(),
            args.results.display()
        );
        return Ok(Outcome::Problems);
    }
    let outputs = render_all(&dataset)?;
    if args.check {
        let stale = outputs.stale_files(&args.out);
        if stale.is_empty() {
            eprintln!("{} is up to date", args.out.display());
            return Ok(Outcome::Ok);
        }
        eprintln!("{} is stale; these files would change:", args.out.display());
        for f in stale {
            eprintln!("  {f}");
        }
        return Ok(Outcome::Problems);
    }
    let written = outputs
        .write_all(&args.out)
        .with_context(|| format!("writing the report to {}", args.out.display()))?;
    eprintln!(
        "{} measurements from {} machines → {} ({written} files written)",
        dataset.records.len(),
        dataset.machines.len(),
        args.out.display()
    );
    Ok(Outcome::Ok)
}

pub fn render_all(dataset: &Dataset) -> Result<OutputSet> {
    let mut outputs = OutputSet::default();
    outputs.add("index.md", inventory::render(dataset).into_bytes())?;
    let mut table = ingest::table::build(&dataset.records).context("building the tidy table")?;
    let mut csv = Vec::new();
    ingest::table::write_csv(&mut table, &mut csv).context("writing the tidy table as CSV")?;
    outputs.add("measurements.csv", csv)?;
    Ok(outputs)
}

fn print_problems(dataset: &Dataset) {
    for f in &dataset.files {
        match &f.status {
            FileStatus::Failed { error } => eprintln!("error: {}: {error}", f.file),
            FileStatus::Unrecognised => {
                eprintln!("skipped: {}: not a result format silirep knows", f.file)
            }
            _ => {}
        }
    }
    for w in &dataset.warnings {
        eprintln!("warning: {w}");
    }
    if dataset.files.is_empty() {
        eprintln!("warning: no .json result files found");
    }
}
