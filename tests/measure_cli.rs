//! End-to-end: `silirep measure` on this machine's CPU writes a valid schema-v1 file that
//! `silirep report` reads, and Ctrl-C leaves a valid file with what finished.

use silirep_core::schema::{RunFile, RunStatus, VerificationStatus};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_silirep"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
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
    let families: std::collections::BTreeSet<&str> =
        run.measurements.iter().map(|m| m.spec.family()).collect();
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
fn unknown_selection_is_explained() {
    let out = tempfile::tempdir().unwrap();
    let result = bin()
        .args([
            "measure",
            "--backend",
            "cpu",
            "--kernels",
            "nonesuch",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no configuration of the standard suite matches"),
        "{stderr}"
    );
    assert!(stderr.contains("available kernels: "), "{stderr}");
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
