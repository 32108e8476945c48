//! `silirep measure`: pick a backend, select configurations, run each through the shared
//! harness, and keep the result file on disk up to date after every configuration — so a
//! crash or Ctrl-C loses at most the configuration in progress.

pub mod backends;
pub mod console;
pub mod options;
pub mod peer;
pub mod selection;
pub mod system;
pub mod writer;

use crate::cli::MeasureArgs;
use crate::util::format;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use silirep_core::harness::{self, StoppingRule};
use silirep_core::schema::{
    BackendInfo, RunFile, RunStatus, SCHEMA_NAME, SCHEMA_VERSION, Settings, Tool,
};
use silirep_core::{Backend, KernelSpec, Suite};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How a measure run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Interrupted,
}

pub fn run(args: &MeasureArgs) -> Result<Outcome> {
    // Everything the user typed is checked before a backend is opened or anything is
    // allocated or written.
    let target_ci = options::check(args)?;
    let selection = selection::Selection::parse(&args.kernels, &args.dtypes, &args.sizes)?
        .with_causal(args.causal)
        .with_decode_context(args.decode_context);
    let suite = match args.suite {
        crate::cli::SuiteArg::Quick => Suite::Quick,
        crate::cli::SuiteArg::Standard => Suite::Standard,
        crate::cli::SuiteArg::Full => Suite::Full,
    };
    let mut backend = backends::open(args.backend, args.threads, &args.gpus)?;
    eprintln!("backend: {}", backend.name());
    if let Some(peer) = &args.peer {
        let link = silirep_link::LinkClient::new(
            peer,
            std::time::Duration::from_secs_f64(args.peer_timeout),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("link peer: {peer}");
        backend = Box::new(peer::WithPeer::new(backend, link));
    }

    let specs = select(backend.as_ref(), suite, &selection)?;
    let settings = settings_for(suite, args, &selection, target_ci);
    if args.list {
        print!(
            "{}",
            console::configuration_list(backend.name(), &specs, &settings, &selection.describe())
        );
        eprintln!("--list: nothing measured, no result file written");
        return Ok(Outcome::Completed);
    }

    let rule = StoppingRule::from(&settings);
    let mut machine = system::describe_machine();
    machine.accelerator = backend.accelerator();
    system::assign_machine_id(&mut machine);
    machine.label = args.label.clone().unwrap_or_else(|| {
        machine
            .accelerator
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_else(|| machine.cpu.model.clone())
    });
    let started = crate::util::time::now_utc();
    let run_id = format!(
        "{}-{}-{:04x}",
        machine.id,
        started.compact(),
        crate::util::fnv1a64(format!("{}{}", std::process::id(), started.nanos).as_bytes()) as u16
    );
    let mut run = RunFile {
        schema: SCHEMA_NAME.into(),
        schema_version: SCHEMA_VERSION,
        run_id: run_id.clone(),
        started_at: started.rfc3339(),
        finished_at: None,
        status: RunStatus::Running,
        tool: Tool {
            name: "silirep".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        backend: BackendInfo {
            name: backend.name().to_string(),
            ..backend.info()
        },
        machine,
        settings,
        measurements: Vec::new(),
    };
    let file = writer::RunWriter::create(&args.out, &run)?;
    eprintln!("writing {}", file.path().display());

    let stop = install_interrupt_handler()?;
    let progress = progress_bar(specs.len() as u64);
    for (i, spec) in specs.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        progress.set_message(console::describe_spec(spec));
        let measurement = harness::measure(
            backend.as_mut(),
            spec,
            &rule,
            args.seed.wrapping_add(i as u64),
            &stop,
        );
        let interrupted = measurement
            .error
            .as_ref()
            .is_some_and(|e| e.kind == silirep_core::schema::ErrorKind::Interrupted);
        if interrupted {
            // Unfinished: not a result, and not a failure of the kernel either.
            break;
        }
        progress.println(console::summary_line(&measurement, target_ci));
        run.measurements.push(measurement);
        file.write(&run)
            .with_context(|| format!("updating {}", file.path().display()))?;
        progress.inc(1);
    }
    progress.finish_and_clear();

    let interrupted = stop.load(Ordering::SeqCst);
    run.status = if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    run.finished_at = Some(crate::util::time::now_utc().rfc3339());
    file.write(&run)?;
    eprintln!();
    eprint!("{}", console::summary_table(&run.measurements, target_ci));
    if let Some(note) = console::shortfall_note(&run.measurements, target_ci) {
        eprintln!("{note}");
    }
    eprintln!(
        "{} {} configurations → {}",
        if interrupted {
            "interrupted after"
        } else {
            "measured"
        },
        run.measurements.len(),
        file.path().display()
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    }
    Ok(if interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Completed
    })
}

/// The configurations to run: the suite filtered by the selection, every name and size
/// checked against what the backend's kernels are, and configurations made from `--sizes`
/// checked against the memory they would need.
fn select(
    backend: &dyn Backend,
    suite: Suite,
    selection: &selection::Selection,
) -> Result<Vec<KernelSpec>> {
    let suites: Vec<(Suite, Vec<KernelSpec>)> = [Suite::Quick, Suite::Standard, Suite::Full]
        .into_iter()
        .map(|s| (s, backend.suite(s)))
        .collect();
    let every: Vec<KernelSpec> = suites.iter().flat_map(|(_, k)| k.clone()).collect();
    selection.check_kernel_names(&every)?;
    let chosen = &suites
        .iter()
        .find(|(s, _)| *s == suite)
        .map(|(_, k)| k.clone())
        .unwrap_or_default();
    let specs = selection.apply(chosen)?;
    if specs.is_empty() {
        bail!(
            "{}",
            selection.explain_empty(backend.name(), suite, &suites)
        );
    }
    // The suite's own configurations are sized for this machine (and the harness records
    // any that still does not fit); sizes from the command line are the user's, so one that
    // cannot fit is a mistake to point out now, not a failure to find in the file later.
    if selection.has_sizes() || selection.has_decode_context() {
        for spec in &specs {
            if harness::exceeds_memory(spec, backend.memory_bytes()).is_some() {
                // Name the option that made it too big: a decode's context, else its size.
                let option = match spec {
                    KernelSpec::Decode { context, .. }
                        if selection.has_decode_context() && *context > 0 =>
                    {
                        "--decode-context"
                    }
                    _ => "--sizes",
                };
                bail!("{option}: {}", too_big(spec, backend));
            }
        }
    }
    Ok(specs)
}

fn too_big(spec: &KernelSpec, backend: &dyn Backend) -> String {
    let needed = spec.footprint_bytes().unwrap_or(f64::NAN);
    let memory = backend.memory_bytes().unwrap_or(0);
    let whose = match backend.accelerator() {
        Some(a) => format!("the {}'s", a.name),
        None => "this machine's".into(),
    };
    format!(
        "{} {} at {} needs at least {} ({needed:.0} bytes) for its operands, more than \
         {whose} {} ({memory} bytes) of memory",
        spec.name(),
        spec.precision_label(),
        console::size_label(spec),
        format::si(needed, "B"),
        format::bytes_binary(memory),
    )
}

fn settings_for(
    suite: Suite,
    args: &MeasureArgs,
    selection: &selection::Selection,
    target_relative_ci: f64,
) -> Settings {
    let defaults = Settings::default();
    // Quick runs are smoke tests: fewer samples, shorter caps, burst clocks accepted.
    let (min_samples, warmup_iterations, default_warmup_time, default_max_time) = match suite {
        Suite::Quick => (5, 1, 0.1, 0.5),
        Suite::Standard => (
            defaults.min_samples,
            defaults.warmup_iterations,
            defaults.warmup_time_s,
            2.0,
        ),
        Suite::Full => (20, 5, 2.0, 5.0),
    };
    Settings {
        suite: suite.name().to_string(),
        target_relative_ci,
        max_time_per_config_s: args.max_time.unwrap_or(default_max_time),
        min_samples,
        max_samples: defaults.max_samples,
        warmup_iterations,
        warmup_time_s: args.warmup_time.unwrap_or(default_warmup_time),
        selection: selection.as_record(),
    }
}

/// First Ctrl-C: finish the current configuration's bookkeeping and stop cleanly.
/// Second Ctrl-C: leave at once (the file on disk already holds every finished result).
fn install_interrupt_handler() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let presses = Arc::new(AtomicUsize::new(0));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "\ninterrupt: stopping; finished measurements are kept (Ctrl-C again to quit now)"
            );
            flag.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} {wide_msg} (elapsed {elapsed}, ETA {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
