//! `silirep report`: load → choose the analyses → analyse → render → write (or `--check`).
//!
//! A report holds one or several analyses (see [`crate::analysis::report_sets`]). With one,
//! its page is the report's `index.md`; with several, `index.md` lists them and each has its
//! folder (`<slug>/index.md`, `index.html`, `charts/`). Machine pages (`machines/`) and the
//! tidy table (`measurements.csv`) always cover every result file.

use crate::analysis::report_sets::{self, Chosen, ReportSet};
use crate::analysis::{self, catalog::Catalog};
use crate::cli::ReportArgs;
use crate::ingest::{self, Dataset, FileStatus};
use crate::render::charts;
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
    ingest::reconcile_machine_labels(&mut dataset);
    let config_path = args.analyses.clone().or_else(|| {
        let beside = args.results.join(report_sets::CONFIG_FILE);
        (args.results.is_dir() && beside.is_file()).then_some(beside)
    });
    let config = config_path
        .as_deref()
        .map(report_sets::read_config)
        .transpose()?;
    let chosen = report_sets::choose(&dataset, config.as_ref());
    // Selection problems are warnings of the analyses file, listed with the others.
    dataset.warnings.extend(chosen.warnings.iter().cloned());
    dataset.warnings.sort();
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
    let config_name = config_path.as_deref().map(|p| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let outputs = render_all(
        &dataset,
        &chosen,
        config_name,
        &catalog,
        &templates,
        generated,
    )?;
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
    chosen: &Chosen,
    config_name: Option<String>,
    catalog: &Catalog,
    templates: &tera::Tera,
    generated: Option<String>,
) -> Result<OutputSet> {
    let mut outputs = OutputSet::default();
    // Every record's estimate is made once; each analysis takes its share.
    let rates = analysis::rates(dataset);
    let inventory_md = inventory::render(dataset, templates)?;
    let single = chosen.sets.len() == 1 && chosen.unassigned.is_empty();
    if single {
        let set = &chosen.sets[0];
        let place = pages::AnalysisPlace {
            title: &set.title,
            question: &set.question,
            root_prefix: "",
            index_link: None,
        };
        render_analysis(
            &mut outputs,
            dataset,
            set,
            &rates,
            catalog,
            templates,
            (&place, ""),
            inventory_md,
            generated,
        )?;
    } else {
        let mut links = Vec::new();
        for set in &chosen.sets {
            let place = pages::AnalysisPlace {
                title: &set.title,
                question: &set.question,
                root_prefix: "../",
                index_link: Some("../index.md".into()),
            };
            let inventory_note = "## Inventory\n\nThe files behind this analysis, every other \
                                  file of the results tree and every warning are listed in the \
                                  [report's inventory](../index.md#inventory).\n"
                .to_string();
            let (analysis, link_lines) = render_analysis(
                &mut outputs,
                dataset,
                set,
                &rates,
                catalog,
                templates,
                (&place, &format!("{}/", set.slug)),
                inventory_note,
                generated.clone(),
            )?;
            let mut link = pages::analysis_link_view(set, &analysis);
            if link.headlines.is_empty() {
                link.headlines = link_lines;
            }
            links.push(link);
        }
        let view = pages::analyses_index_view(
            dataset,
            chosen,
            links,
            config_name,
            inventory_md,
            generated,
        );
        outputs.add(
            "index.md",
            pages::render(templates, "analyses.md.tera", &view)?.into_bytes(),
        )?;
        outputs.add(
            "index.html",
            pages::render(templates, "analyses.html.tera", &view)?.into_bytes(),
        )?;
    }
    // Machine pages show each machine alone: its rooflines and every measurement (no
    // comparisons, so none are computed).
    let rooflines = analysis::rooflines::rooflines(dataset, catalog);
    for (key, page) in pages::machine_page_views(dataset, &rates, &rooflines) {
        outputs.add(
            &format!("machines/{}.md", pages::machine_file_stem(&key)),
            pages::render(templates, "machine.md.tera", &page)?.into_bytes(),
        )?;
    }
    render_histories(&mut outputs, dataset, &rates, templates)?;
    let mut table = ingest::table::build(&dataset.records).context("building the tidy table")?;
    let mut csv = Vec::new();
    crate::render::csv::write_csv(&mut table, &mut csv).context("writing the tidy table as CSV")?;
    outputs.add("measurements.csv", csv)?;
    Ok(outputs)
}

/// Renders one analysis's pages and charts under `folder` (`""` or `"<slug>/"`), and returns
/// the analysis and, for the index, a line per collective measured by silirep (an analysis
/// of links has no verdicts or rooflines to lead with).
#[allow(clippy::too_many_arguments)]
fn render_analysis(
    outputs: &mut OutputSet,
    dataset: &Dataset,
    set: &ReportSet,
    rates: &[Option<analysis::RateEstimate>],
    catalog: &Catalog,
    templates: &tera::Tera,
    (place, folder): (&pages::AnalysisPlace, &str),
    inventory_md: String,
    generated: Option<String>,
) -> Result<(analysis::Analysis, Vec<String>)> {
    let (subset, indices) = dataset.only_machines(&set.machines);
    let subset_rates = indices.iter().map(|&i| rates[i].clone()).collect();
    let analysis = analysis::analyse_with_rates(&subset, subset_rates, catalog);
    let interconnect = analysis::interconnect::analyse(&subset, &analysis.rates, catalog);
    let mut rendered_charts = Vec::new();
    let all_charts = charts::charts(&subset, &analysis)
        .into_iter()
        .chain(charts::interconnect_charts(&interconnect, &subset.captures));
    for chart in all_charts {
        match chart.render() {
            Ok(r) => {
                outputs.add(&format!("{folder}charts/{}.png", chart.stem), r.png)?;
                outputs.add(
                    &format!("{folder}charts/{}.svg", chart.stem),
                    r.svg.clone().into_bytes(),
                )?;
                rendered_charts.push((chart, r.svg));
            }
            // A chart that cannot be drawn must not sink the report; say which and why.
            Err(e) => eprintln!("warning: chart {folder}{} not drawn: {e}", chart.stem),
        }
    }
    let predictions = analysis::predictions::predict(
        &subset,
        &analysis.rates,
        &analysis.rooflines,
        catalog,
        &set.request,
        set.link.as_ref(),
    );
    let mut view = pages::report_view(
        &subset,
        &analysis,
        &rendered_charts,
        inventory_md,
        generated,
        place,
    );
    view.model_level = Some(pages::predictions::model_level_view(&predictions));
    view.interconnect = pages::interconnect::interconnect_view(&interconnect, &subset.captures);
    let link_lines = view
        .interconnect
        .as_ref()
        .map(|ic| ic.headline_lines())
        .unwrap_or_default();
    outputs.add(
        &format!("{folder}index.md"),
        pages::render(templates, "index.md.tera", &view)?.into_bytes(),
    )?;
    outputs.add(
        &format!("{folder}index.html"),
        pages::render(templates, "index.html.tera", &view)?.into_bytes(),
    )?;
    Ok((analysis, link_lines))
}

/// `machines/<stem>-history.md` and its charts for every machine with more than one run.
fn render_histories(
    outputs: &mut OutputSet,
    dataset: &Dataset,
    rates: &[Option<analysis::RateEstimate>],
    templates: &tera::Tera,
) -> Result<()> {
    let floors = analysis::history::NoiseFloors::from_dataset(dataset);
    for history in analysis::history::histories(dataset, rates, &floors) {
        let stem = pages::machine_file_stem(&history.machine);
        let mut drawn = Vec::new();
        for (family, chart) in charts::history_charts(&history) {
            let file = format!("{stem}-{}", family.name());
            match silirep_charts::history_chart(&chart) {
                Ok(r) => {
                    outputs.add(&format!("machines/history-charts/{file}.png"), r.png)?;
                    outputs.add(
                        &format!("machines/history-charts/{file}.svg"),
                        r.svg.into_bytes(),
                    )?;
                    drawn.push((chart.line.title.clone(), file));
                }
                Err(e) => eprintln!("warning: chart machines/history-charts/{file} not drawn: {e}"),
            }
        }
        let view = pages::history::history_view(&history, format!("{stem}.md"), drawn);
        outputs.add(
            &format!("machines/{stem}-history.md"),
            pages::render(templates, "history.md.tera", &view)?.into_bytes(),
        )?;
    }
    Ok(())
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
                crate::util::time::UtcTime::from_unix(seconds, 0).rfc3339(),
            ))
        }
        Err(_) => Ok(None),
    }
}
