//! `silirep report`: load → analyse → render → write (or `--check`).

use crate::analysis::{self, catalog::Catalog};
use crate::cli::ReportArgs;
use crate::ingest::{self, Dataset, FileStatus};
use crate::render::charts::{self, ChartSpec};
use crate::render::{inventory, output::OutputSet, pages};
use anyhow::{Context, Result};

/// Exit status of a report run that did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// `--strict` found problems, or `--check` found stale files.
    Problems,
}

pub fn run(args: &ReportArgs) -> Result<Outcome> {
    // Checked before the (possibly long) load and analysis, which would otherwise end in a
    // confusing `<file>/charts: Not a directory`.
    if args.out.exists() && !args.out.is_dir() {
        anyhow::bail!("-o must be a directory: {} is a file", args.out.display());
    }
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
    let catalog = match &args.catalog {
        Some(path) => Catalog::with_user_file(path)?,
        None => Catalog::built_in(),
    };
    let templates = pages::load_templates(args.templates.as_deref())?;
    let generated = source_date_epoch()?;
    let outputs = render_all(&dataset, &catalog, &templates, generated)?;
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
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    eprintln!(
        "{} from {} → {} ({} written)",
        plural(dataset.records.len(), "measurement"),
        plural(dataset.machines.len(), "machine"),
        args.out.display(),
        plural(written, "file"),
    );
    Ok(Outcome::Ok)
}

pub fn render_all(
    dataset: &Dataset,
    catalog: &Catalog,
    templates: &tera::Tera,
    generated: Option<String>,
) -> Result<OutputSet> {
    let mut outputs = OutputSet::default();
    let analysis = analysis::analyse(dataset, catalog);
    let mut rendered_charts = Vec::new();
    for chart in charts::charts(dataset, &analysis) {
        let rendered = match &chart.spec {
            ChartSpec::Roofline(c) => silirep_charts::roofline(c),
            ChartSpec::Line(c) => silirep_charts::line_chart(c),
        };
        match rendered {
            Ok(r) => {
                outputs.add(&format!("charts/{}.png", chart.stem), r.png)?;
                outputs.add(
                    &format!("charts/{}.svg", chart.stem),
                    r.svg.clone().into_bytes(),
                )?;
                rendered_charts.push((chart, r.svg));
            }
            // A chart that cannot be drawn must not sink the report; say which and why.
            Err(e) => eprintln!("warning: chart {} not drawn: {e}", chart.stem),
        }
    }
    let inventory_md = inventory::render(dataset);
    let view = pages::report_view(
        dataset,
        &analysis,
        &rendered_charts,
        inventory_md,
        generated,
    );
    outputs.add(
        "index.md",
        pages::render(templates, "index.md.tera", &view)?.into_bytes(),
    )?;
    outputs.add(
        "index.html",
        pages::render(templates, "index.html.tera", &view)?.into_bytes(),
    )?;
    for key in dataset.machines.keys() {
        let page = pages::machine_page_view(dataset, &analysis, key);
        outputs.add(
            &format!("machines/{}.md", pages::machine_file_stem(key)),
            pages::render(templates, "machine.md.tera", &page)?.into_bytes(),
        )?;
    }
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

/// The report's date, only when asked for through `SOURCE_DATE_EPOCH` (the reproducible-builds
/// convention: seconds since 1970 UTC). Without it reports carry no date, so regenerating them
/// changes nothing.
fn source_date_epoch() -> Result<Option<String>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => {
            let seconds: i64 = text.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH={text:?}: expected whole seconds since 1970-01-01 UTC")
            })?;
            Ok(Some(
                crate::measure::timestamp::UtcTime::from_unix(seconds, 0).rfc3339(),
            ))
        }
        Err(_) => Ok(None),
    }
}
