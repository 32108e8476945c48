//! End-to-end: `silirep measure` on this machine's CPU writes a valid schema-v1 file that
//! `silirep report` reads, and Ctrl-C leaves a valid file with what finished. Bad options are
//! refused before anything is allocated or written, with a message that says what was meant
//! (issue 18's cases, each one here), and the console says what each number is.

use silirep_core::schema::{RunFile, RunStatus, VerificationStatus};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_silirep"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Runs `silirep measure --backend cpu --out <out> <args>`.
fn measure(out: &Path, args: &[&str]) -> std::process::Output {
    bin()
        .args(["measure", "--backend", "cpu", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

/// The run failed as a usage error (exit 2), not a crash, said `expected`, and wrote nothing.
fn assert_refused(out: &Path, args: &[&str], expected: &str) -> String {
    let result = measure(out, args);
    let stderr = String::from_utf8_lossy(&result.stderr).to_string();
    assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        run_files(out).is_empty(),
        "{args:?}: nothing may be written"
    );
    stderr
}

fn run_files(out: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(machines) = std::fs::read_dir(out.join("raw")) else {
        return files;
    };
    for machine in machines.flatten() {
        for f in std::fs::read_dir(machine.path()).unwrap().flatten() {
            files.push(f.path());
        }
    }
    files.sort();
    files
}

#[test]
fn quick_suite_writes_a_valid_run_that_report_reads() {
    let out = tempfile::tempdir().unwrap();
    let result = bin()
        .args(["measure", "--suite", "quick", "--backend", "cpu", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let files = run_files(out.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].extension().is_some_and(|e| e == "json"),
        "{files:?}"
    );
    let run: RunFile = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.backend.name, "cpu");
    assert!(run.finished_at.is_some());
    let families: std::collections::BTreeSet<&str> = run
        .measurements
        .iter()
        .map(|m| m.spec.family().name())
        .collect();
    for family in [
        "gemm",
        "bandwidth",
        "attention",
        "layer",
        "decode",
        "intensity_sweep",
    ] {
        assert!(
            families.contains(family),
            "{family} missing from the quick suite"
        );
    }
    for m in &run.measurements {
        if m.error.is_none() {
            assert_eq!(
                m.verification.status,
                VerificationStatus::Passed,
                "{:?}",
                m.spec
            );
            assert!(!m.samples_s.is_empty());
            assert!(m.samples_s.iter().all(|s| *s > 0.0));
        } else {
            assert!(
                m.samples_s.is_empty(),
                "a failed configuration must carry no samples"
            );
        }
    }

    let report = tempfile::tempdir().unwrap();
    let result = bin()
        .arg("report")
        .arg(out.path())
        .arg("-o")
        .arg(report.path())
        .arg("--strict")
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let index = std::fs::read_to_string(report.path().join("index.md")).unwrap();
    assert!(index.contains("silirep run v1"), "{index}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_finished_measurements_in_a_valid_file() {
    let out = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args([
            "measure",
            "--suite",
            "standard",
            "--backend",
            "cpu",
            "--out",
        ])
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until at least one configuration is on disk.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = run_files(out.path())
            .first()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str::<RunFile>(&t).ok())
            .is_some_and(|r| !r.measurements.is_empty());
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no measurement finished within 120 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "measure exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupt"), "{stderr}");

    let files = run_files(out.path());
    assert_eq!(
        files.len(),
        1,
        "exactly the run file, no temporary leftovers: {files:?}"
    );
    let run: RunFile = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(!run.measurements.is_empty());
    assert!(
        run.measurements.iter().all(|m| m
            .error
            .as_ref()
            .is_none_or(|e| e.kind != silirep_core::schema::ErrorKind::Interrupted)),
        "the unfinished configuration is dropped, not recorded"
    );
}

#[test]
fn timing_options_out_of_range_are_refused() {
    let out = tempfile::tempdir().unwrap();
    for (flag, value, expected) in [
        (
            "--warmup-time",
            "-1",
            "--warmup-time must be a finite number ≥ 0, got -1",
        ),
        (
            "--warmup-time",
            "inf",
            "--warmup-time must be a finite number ≥ 0, got inf",
        ),
        (
            "--max-time",
            "0",
            "--max-time must be a finite number > 0, got 0",
        ),
        (
            "--target-ci",
            "NaN",
            "--target-ci must be a finite number > 0, got NaN",
        ),
    ] {
        let result = bin()
            .args([
                "measure",
                "--backend",
                "cpu",
                &format!("{flag}={value}"),
                "--out",
            ])
            .arg(out.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
    }
    assert!(run_files(out.path()).is_empty(), "nothing written");
}

#[test]
fn a_byte_size_for_a_gemm_is_refused_before_allocating() {
    let out = tempfile::tempdir().unwrap();
    // Once `memory allocation of 4000000000000000000 bytes failed` and exit 134.
    let stderr = assert_refused(
        out.path(),
        &["--kernels", "gemm", "--sizes", "1GB"],
        "--sizes 1GB: a byte size, but none of the selected kernels is sized in bytes",
    );
    assert!(
        stderr.contains("for gemm it is the matrix dimension"),
        "{stderr}"
    );
    assert!(!stderr.contains("memory allocation"), "{stderr}");
    // The same number as a dimension is a size the machine cannot hold: said with the bytes.
    let stderr = assert_refused(
        out.path(),
        &["--kernels", "gemm", "--dtypes", "f32", "--sizes", "1G"],
        "--sizes: gemm f32 at m=n=k=1000000000 needs at least",
    );
    assert!(
        stderr.contains("(12000000000000000000 bytes) for its operands, more than this machine's"),
        "{stderr}"
    );
    assert!(stderr.contains("bytes) of memory"), "{stderr}");
    // A bandwidth size needs a byte unit.
    assert_refused(
        out.path(),
        &["--kernels", "bandwidth_triad", "--sizes", "4096"],
        "--sizes 4096: a plain number, but the selected kernels are sized in bytes",
    );
}

#[test]
fn size_units_are_decimal_or_binary_as_written() {
    let out = tempfile::tempdir().unwrap();
    let result = measure(
        out.path(),
        &[
            "--kernels",
            "gemm",
            "--dtypes",
            "f32",
            "--sizes",
            "4k,4Ki",
            "--list",
        ],
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(stdout.contains("m=n=k=4000 "), "{stdout}");
    assert!(stdout.contains("m=n=k=4096 "), "{stdout}");
    let result = measure(
        out.path(),
        &[
            "--kernels",
            "bandwidth_triad",
            "--sizes",
            "1GB,1GiB",
            "--list",
        ],
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("1.00 GB per array"), "{stdout}");
    assert!(stdout.contains("1.00 GiB per array"), "{stdout}");
    assert!(run_files(out.path()).is_empty(), "--list writes nothing");
}

#[test]
fn list_prints_the_configurations_and_an_estimate_without_measuring() {
    let out = tempfile::tempdir().unwrap();
    let result = measure(
        out.path(),
        &[
            "--suite",
            "quick",
            "--dry-run",
            "--max-time",
            "2",
            "--warmup-time",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(
        stdout.contains("configurations of the quick suite on cpu"),
        "{stdout}"
    );
    for expected in [
        "m=n=k=256",
        "per array",
        "seq 256",
        "batch 1, 1 of 32 layers",
        "FMA/element",
        "estimated duration: about",
        "(3 s per configuration: 1 s untimed warm-up, then up to 2 s timed",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert!(
        stderr.contains("nothing measured, no result file written"),
        "{stderr}"
    );
    assert!(
        !out.path().join("raw").exists(),
        "no result directory either"
    );
}

#[test]
fn threads_target_ci_and_backend_mistakes_say_what_was_meant() {
    let out = tempfile::tempdir().unwrap();
    assert_refused(
        out.path(),
        &["--threads", "0"],
        "--threads 0: at least 1 thread is needed",
    );
    assert_refused(
        out.path(),
        &["--target-ci", "5"],
        "--target-ci 5 would be 500% of the median; did you mean 5%?",
    );
    assert_refused(
        out.path(),
        &["--target-ci=-1"],
        "--target-ci must be a finite number > 0, got -1",
    );
    assert_refused(
        out.path(),
        &["--max-time", "1e9"],
        "--max-time is in seconds per configuration and at most 3600",
    );
    // clap's own usage error: says which backend was meant, never "cpu" for "gpu".
    let result = bin()
        .args(["measure", "--backend", "gpu", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did you mean cuda (NVIDIA) or metal (Apple)?"),
        "{stderr}"
    );
    assert!(!stderr.contains("'cpu'"), "{stderr}");
    // Both spellings of a 1% target are the same setting.
    for target in ["1%", "0.01"] {
        let result = measure(
            out.path(),
            &["--suite", "quick", "--target-ci", target, "--list"],
        );
        let stdout = String::from_utf8_lossy(&result.stdout);
        assert!(result.status.success(), "{target}");
        assert!(
            stdout.contains("CI of the median is within 1%"),
            "{target}: {stdout}"
        );
    }
    let file = out.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let result = bin()
        .args(["measure", "--backend", "cpu", "--list", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out must be a directory"), "{stderr}");
}

#[test]
fn unknown_names_and_empty_filters_point_to_what_exists() {
    let out = tempfile::tempdir().unwrap();
    let stderr = assert_refused(
        out.path(),
        &["--kernels", "gem"],
        "--kernels: unknown kernel \"gem\" (did you mean \"gemm\"?)",
    );
    assert!(
        stderr.contains("this backend measures attention_fused"),
        "{stderr}"
    );
    assert_refused(
        out.path(),
        &["--dtypes", "bf17"],
        "unknown dtype \"bf17\" (did you mean \"bf16\"?)",
    );
    let stderr = assert_refused(
        out.path(),
        &["--kernels", "attention", "--dtypes", "f16"],
        "no configuration of the standard suite on cpu matches the selection",
    );
    assert!(stderr.contains("f16 is measured by gemm"), "{stderr}");
    assert!(stderr.contains("attention runs in f32 here"), "{stderr}");
}

#[test]
fn console_labels_sizes_decode_scope_and_the_ci_against_its_target() {
    let out = tempfile::tempdir().unwrap();
    // A target no CPU timing can meet in 0.2 s: the configuration stops at the time cap,
    // and must not say "ok".
    let result = measure(
        out.path(),
        &[
            "--suite",
            "quick",
            "--kernels",
            "decode",
            "--max-time",
            "0.2",
            "--warmup-time",
            "0",
            "--target-ci",
            "0.001%",
        ],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let files = run_files(out.path());
    let run: RunFile = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let m = &run.measurements[0];
    assert!(m.error.is_none(), "{m:?}");
    assert!(stderr.contains("batch 1, 1 of 32 layers"), "{stderr}");
    assert!(stderr.contains(" tokens/s per layer ("), "{stderr}");
    assert!(stderr.contains(" tokens/s for all 32 layers)"), "{stderr}");
    // The CI printed is the report's: the bootstrap interval of the median.
    let e = silirep_stats::estimate(&silirep_stats::Observations::Samples(m.samples_s.clone()))
        .unwrap();
    let ci = e.relative_half_width().unwrap();
    let shown = silirep::util::format::percent(ci);
    assert!(
        stderr.contains(&format!("time cap, CI ±{shown} > target 0.00100%")),
        "{shown}: {stderr}"
    );
    let table = stderr
        .split_once("\nkernel ")
        .map(|(_, t)| t)
        .unwrap_or_default();
    assert!(!table.contains(" ok\n"), "{table}");
    assert!(
        stderr.contains("note: 1 of 1 configurations stopped before their 95% CI was within"),
        "{stderr}"
    );

    // The report's machine page says the same about the decode's scope.
    let report = tempfile::tempdir().unwrap();
    let result = bin()
        .arg("report")
        .arg(out.path())
        .arg("-o")
        .arg(report.path())
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let pages: Vec<PathBuf> = std::fs::read_dir(report.path().join("machines"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let page = std::fs::read_to_string(&pages[0]).unwrap();
    assert!(page.contains(" per layer ("), "{page}");
    assert!(page.contains("tokens/s for all 32 layers)"), "{page}");
}

#[test]
fn a_run_that_died_is_reported_incomplete_and_strict_refuses_it() {
    // What a killed `silirep measure` leaves: status "running", no finished_at.
    let results = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("tests/fixtures/native-ok/run.json")
        .unwrap()
        .replace("\"status\": \"completed\"", "\"status\": \"running\"")
        .replace(
            "\"finished_at\": \"2026-01-01T00:00:03Z\"",
            "\"finished_at\": null",
        );
    assert!(text.contains("\"running\""));
    std::fs::write(results.path().join("died.json"), text).unwrap();
    let report = tempfile::tempdir().unwrap();
    let strict = bin()
        .arg("report")
        .arg(results.path())
        .arg("-o")
        .arg(report.path())
        .arg("--strict")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: died.json: $.status: incomplete run"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 finished measurement(s) are kept"),
        "{stderr}"
    );
    let lenient = bin()
        .arg("report")
        .arg(results.path())
        .arg("-o")
        .arg(report.path())
        .output()
        .unwrap();
    assert!(lenient.status.success());
    let index = std::fs::read_to_string(report.path().join("index.md")).unwrap();
    assert!(index.contains("silirep run v1: 3 measurements"), "{index}");
}

#[test]
fn report_output_must_be_a_directory_and_is_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile.md");
    std::fs::write(&file, "notes").unwrap();
    let result = bin()
        .args(["report", "tests/fixtures/native-ok", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "-o must be a directory: {} is a file",
            file.display()
        )),
        "{stderr}"
    );
    // Before anything is computed: no loading, so no summary line either.
    assert!(!stderr.contains("measurement"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "notes");
}
