//! `silirep measure`: pick a backend, select configurations, run each through the shared
//! harness, and keep the result file on disk up to date after every configuration — so a
//! crash or Ctrl-C loses at most the configuration in progress.

pub mod backends;
pub mod selection;
pub mod system;
pub mod timestamp;
pub mod writer;

use crate::cli::MeasureArgs;
use crate::render::format;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use silirep_core::harness::{self, StoppingRule};
use silirep_core::schema::{
    BackendInfo, Measurement, RunFile, RunStatus, SCHEMA_NAME, SCHEMA_VERSION, Settings, Tool,
};
use silirep_core::{KernelSpec, Suite};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How a measure run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Interrupted,
}

pub fn run(args: &MeasureArgs) -> Result<Outcome> {
    check_timing_args(args)?;
    let suite = match args.suite {
        crate::cli::SuiteArg::Quick => Suite::Quick,
        crate::cli::SuiteArg::Standard => Suite::Standard,
        crate::cli::SuiteArg::Full => Suite::Full,
    };
    let mut backend = backends::open(args.backend, args.threads, &args.gpus)?;
    eprintln!("backend: {}", backend.name());

    let selection = selection::Selection::parse(&args.kernels, &args.dtypes, &args.sizes)?;
    let specs = selection.apply(&backend.suite(suite));
    anyhow::ensure!(
        !specs.is_empty(),
        "no configuration of the {} suite matches the selection ({}); available kernels: {}",
        suite.name(),
        selection.describe(),
        selection::available_kernels(&backend.suite(suite)).join(", ")
    );

    let settings = settings_for(suite, args, &selection);
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
    let started = timestamp::now_utc();
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
        progress.set_message(describe_spec(spec));
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
        progress.println(summary_line(&measurement));
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
    run.finished_at = Some(timestamp::now_utc().rfc3339());
    file.write(&run)?;
    eprintln!();
    eprint!("{}", summary_table(&run.measurements));
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

/// The timing options become numbers in the result file and loop bounds in the harness: a
/// negative, infinite or NaN value would hang the run or write a file its own schema rejects.
fn check_timing_args(args: &MeasureArgs) -> Result<()> {
    let checks = [
        ("--target-ci", Some(args.target_ci), false),
        ("--max-time", args.max_time, false),
        ("--warmup-time", args.warmup_time, true),
    ];
    for (flag, value, zero_allowed) in checks {
        if let Some(v) = value {
            anyhow::ensure!(
                v.is_finite() && (v > 0.0 || (zero_allowed && v == 0.0)),
                "{flag} must be a finite number {} 0, got {v}",
                if zero_allowed { "≥" } else { ">" }
            );
        }
    }
    Ok(())
}

fn settings_for(suite: Suite, args: &MeasureArgs, selection: &selection::Selection) -> Settings {
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
        target_relative_ci: args.target_ci,
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

fn describe_spec(spec: &KernelSpec) -> String {
    format!(
        "{} {} {}",
        spec.name(),
        spec.precision_label(),
        spec.params_label()
    )
}

/// The figure a user reads first for a kernel: GB/s for bandwidth, tokens/s for decode and
/// layers, FLOP/s otherwise.
fn headline_rate(m: &Measurement) -> Option<String> {
    let median = silirep_core::stats::median(&m.samples_s)?;
    Some(match m.spec.family() {
        "bandwidth" => format::si(m.bytes? / median, "B/s"),
        // nccl-tests' algbw and busbw.
        "interconnect" => match &m.spec {
            silirep_core::KernelSpec::Collective { .. } => format!(
                "{} algbw, {} busbw",
                format::si(m.bytes? / median, "B/s"),
                format::si(m.spec.bus_bytes()? / median, "B/s")
            ),
            _ => format::si(m.bytes? / median, "B/s"),
        },
        "decode" => format!("{} tokens/s", format::sig3(m.spec.tokens()? / median)),
        _ => format::si(m.flops? / median, "FLOP/s"),
    })
}

fn summary_line(m: &Measurement) -> String {
    match (&m.error, headline_rate(m)) {
        (Some(e), _) => format!("  {}: {:?} — {}", describe_spec(&m.spec), e.kind, e.message),
        (None, Some(rate)) => {
            let ci = silirep_core::stats::relative_ci_half_width(&m.samples_s)
                .map(|r| format!("±{:.1}%", r * 100.0))
                .unwrap_or_else(|| "no CI".into());
            format!(
                "  {}: {rate} (median {}, {ci}, n={})",
                describe_spec(&m.spec),
                format::duration(silirep_core::stats::median(&m.samples_s).unwrap_or(f64::NAN)),
                m.samples_s.len()
            )
        }
        (None, None) => format!("  {}: no samples", describe_spec(&m.spec)),
    }
}

fn summary_table(measurements: &[Measurement]) -> String {
    let mut out = String::from(
        "kernel                     dtype     size          median       rate                 95% CI    n     status\n",
    );
    for m in measurements {
        let median = silirep_core::stats::median(&m.samples_s);
        let ci = silirep_core::stats::relative_ci_half_width(&m.samples_s)
            .map(|r| format!("±{:.1}%", r * 100.0))
            .unwrap_or_else(|| "—".into());
        let status = match &m.error {
            Some(e) => format!("{:?}", e.kind),
            None => "ok".into(),
        };
        out.push_str(&format!(
            "{:<26} {:<9} {:<13} {:<12} {:<20} {:<9} {:<5} {}\n",
            m.spec.name(),
            m.spec.precision_label(),
            m.spec.primary_size(),
            median.map(format::duration).unwrap_or_else(|| "—".into()),
            headline_rate(m).unwrap_or_else(|| "—".into()),
            ci,
            m.samples_s.len(),
            status
        ));
    }
    out
}
