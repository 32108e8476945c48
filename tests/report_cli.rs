//! End-to-end: the `silirep` binary on the real mac-ml-benchmark results (the repository's
//! own copy under `results/imported/`), on the committed results tree, and on small
//! hand-written fixtures, broken ones included. Every failure must be a clear message and an
//! exit code, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SEED: &str = "results/imported/mac-ml-benchmark";

fn silirep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_silirep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // Reports are dated only on request; an inherited value would date them.
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("the silirep binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}")
}

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED)
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "panic in:\n{err}");
    assert_ne!(out.status.code(), Some(101), "exit code of a panic:\n{err}");
}

fn report_into(results: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["report", results, "-o", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = silirep(&args);
    assert_no_panic(&out);
    out
}

#[test]
fn seed_data_inventory_lists_both_machines_and_every_kernel_family() {
    assert!(
        seed_dir().is_dir(),
        "seed data missing at {}",
        seed_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(SEED, dir.path(), &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    for machine in ["| Apple M5 |", "| Apple M4 Pro |"] {
        assert!(index.contains(machine), "{machine} missing from:\n{index}");
    }
    // Ratio orientation, from the data: the M4 Pro read 1.5 GB in 6.393 ms, the M5 in
    // 14.119 ms, so the M4 Pro is 2.21× faster at that read.
    assert!(
        index.contains("| bandwidth_read | array_bytes=1610577424 | f32 | pytorch_mps | Apple M4 Pro 2.21× (no CI) |"),
        "bandwidth_read verdict missing or reversed:\n{index}"
    );
    // The analysis the issue asks for, from the data: the f16 GEMM table by size, both
    // rooflines' ceilings and ridge points, and layer/decode verdicts with their bounds.
    for expected in [
        "### f16 GEMM: Apple M4 Pro vs Apple M5",
        "| 8192 | pytorch_mps | pytorch_mps_benchmarks.json |",
        "| Apple M4 Pro | f16 | 6.08 TFLOP/s |",
        "| 253 GB/s |",
        "| 24.0 FLOP/byte |",
        "| Apple M5 | f16 | 13.8 TFLOP/s |",
        "| 116 FLOP/byte |",
        "| layer_backward | batch=1 seq_len=1024",
        "| model_decode |",
        "Apple M4 Pro: memory / Apple M5: memory",
        "![Roofline, f16: measured ceilings and workloads](charts/roofline_f16.png)",
    ] {
        assert!(
            index.contains(expected),
            "{expected} missing from:\n{index}"
        );
    }
    for chart in [
        "roofline_f16",
        "gemm_f16",
        "bandwidth",
        "attention",
        "layer",
    ] {
        for ext in ["png", "svg"] {
            let path = dir.path().join(format!("charts/{chart}.{ext}"));
            assert!(path.is_file(), "{} missing", path.display());
        }
    }
    // The inventory is the report's appendix; its per-machine sections are level-4 headings.
    let inventory = index
        .split("## Inventory")
        .nth(1)
        .expect("inventory appendix");
    for section in ["#### Apple M5", "#### Apple M4 Pro"] {
        let body = inventory
            .split(section)
            .nth(1)
            .unwrap()
            .split("####")
            .next()
            .unwrap();
        for kernel in [
            "| gemm |",
            "| bandwidth_read |",
            "| bandwidth_copy |",
            "| layer_forward |",
            "| layer_backward |",
            "| model_decode |",
            "| model_train |",
        ] {
            assert!(
                body.contains(kernel),
                "{kernel} missing under {section}:\n{body}"
            );
        }
    }
    // The M5 attention list is only in the M4 Pro files; M5 attention comes from the layer
    // file's attention block.
    assert!(index.contains("| attention | pytorch_mps | f16 | 4 | 0 |"));
    // The NaN in the M5 fine-tune file is a warning naming file, position and path.
    assert!(
        err.contains(
            "warning: M5/pytorch_mps_mistral_finetune.json: line 11, column 17: non-finite token NaN at $.final_loss"
        ),
        "{err}"
    );
    let csv = std::fs::read_to_string(dir.path().join("measurements.csv")).unwrap();
    assert!(csv.lines().count() > 150);
}

#[test]
fn seed_data_under_strict_fails_on_its_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(SEED, dir.path(), &["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--strict"));
    assert!(
        !dir.path().join("index.md").exists(),
        "strict failure must write nothing"
    );
}

#[test]
fn native_run_loads_with_its_failures_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(&fixture("native-ok"), dir.path(), &["--strict"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    assert!(
        index.contains("| gemm | cpu | bf16, f32 | 2 | 1 |"),
        "{index}"
    );
    assert!(
        index.contains("| bandwidth_triad | cpu | f64 | 1 | 0 |"),
        "{index}"
    );
    assert!(index.contains("silirep run v1: 3 measurements"), "{index}");
}

#[test]
fn broken_files_each_get_a_clear_message_and_the_rest_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(&fixture("broken"), dir.path(), &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "non-strict keeps going: {err}");
    let expected = [
        "error: truncated.json: invalid JSON at line 5, column",
        "error: wrong_types.json: not a valid mac-ml-benchmark benchmark lists file: $.benchmarks.gemm[0].time_ms: expected a number, found the string \"fast\"",
        "error: missing_machine.json: not a valid silirep run v1 file: $: missing field `machine`",
        // One bad measurement costs that measurement, not the file.
        "warning: sample_is_string.json: $.measurements[0].samples_s[2]: measurement dropped: invalid type: string \"0.001\", expected f64",
        "error: future_version.json: not a valid silirep run v1 file: $.schema_version: expected 1 (the version this silirep reads), found the number 7",
        "error: not_utf8.json: not UTF-8 text",
    ];
    for e in expected {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    assert!(index.contains("5 failed"), "{index}");

    let strict = report_into(&fixture("broken"), dir.path(), &["--strict"]);
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn empty_and_unrelated_directories_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = report_into(empty.path().to_str().unwrap(), dir.path(), &[]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("no .json result files found"));

    let out = report_into(&fixture("unrelated"), dir.path(), &[]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("skipped: package.json: not a result format silirep knows"),
        "{err}"
    );
    assert!(err.contains("skipped: numbers.json"), "{err}");
    let strict = report_into(&fixture("unrelated"), dir.path(), &["--strict"]);
    assert_eq!(strict.status.code(), Some(1));

    let out = silirep(&[
        "report",
        "/nonexistent/results",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/results: cannot read results directory"));
}

#[test]
fn reports_are_byte_identical_and_check_detects_staleness() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    assert!(report_into(SEED, a.path(), &[]).status.success());
    assert!(report_into(SEED, b.path(), &[]).status.success());
    for name in ["index.md", "measurements.csv"] {
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
            "{name} differs between two runs"
        );
    }
    let check = report_into(SEED, a.path(), &["--check"]);
    assert!(check.status.success(), "{}", stderr(&check));

    // Change one result: the committed report is now stale.
    let results = tempfile::tempdir().unwrap();
    let run = std::fs::read_to_string(fixture("native-ok/run.json")).unwrap();
    std::fs::write(results.path().join("run.json"), &run).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let results_arg = results.path().to_str().unwrap();
    assert!(
        report_into(results_arg, out_dir.path(), &[])
            .status
            .success()
    );
    assert!(
        report_into(results_arg, out_dir.path(), &["--check"])
            .status
            .success()
    );
    std::fs::write(
        results.path().join("run.json"),
        run.replace("0.00101", "0.00201"),
    )
    .unwrap();
    let before = std::fs::read(out_dir.path().join("index.md")).unwrap();
    let stale = report_into(results_arg, out_dir.path(), &["--check"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        stderr(&stale).contains("measurements.csv"),
        "{}",
        stderr(&stale)
    );
    assert_eq!(
        before,
        std::fs::read(out_dir.path().join("index.md")).unwrap(),
        "--check wrote"
    );
}

#[test]
fn schema_command_prints_the_json_schema() {
    let out = silirep(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["properties"]["schema"]["const"], "silirep.run");
}

#[test]
fn help_shows_examples() {
    for args in [
        &["--help"][..],
        &["report", "--help"],
        &["measure", "--help"],
    ] {
        let out = silirep(args);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?}:\n{text}");
    }
}

/// Text from result files reaches the HTML page escaped: the fixture's machine is labelled
/// `Test <Box> & Co`.
#[test]
fn html_escapes_text_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(&fixture("native-ok"), dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(
        html.contains("Test &lt;Box&gt; &amp; Co"),
        "label not escaped:\n{html}"
    );
    assert!(!html.contains("<Box>"), "raw label in the HTML");
}

/// `--templates DIR` replaces a built-in template by name and leaves the others in place.
#[test]
fn templates_directory_overrides_by_name() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("index.md.tera"),
        "custom: {{ machine_count }} machine(s), {{ measurement_count }} measurements\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(
        &fixture("native-ok"),
        dir.path(),
        &["--templates", templates.path().to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    assert!(index.starts_with("custom: 1 machine(s), "), "{index}");
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("<html"), "built-in HTML template still used");
}

/// A date appears only through SOURCE_DATE_EPOCH, and a malformed value is an error that says
/// what was expected.
#[test]
fn source_date_epoch_dates_the_report_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let run = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_silirep"))
            .args(["report", &fixture("native-ok"), "-o"])
            .arg(dir.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("SOURCE_DATE_EPOCH", value)
            .output()
            .unwrap()
    };
    let out = run("1763856000");
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    assert!(index.contains("Generated 2025-11-23T00:00:00Z."), "{index}");
    let out = run("tomorrow");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected whole seconds"),
        "{}",
        stderr(&out)
    );
}

/// A GPU run's clock telemetry reaches its machine page: the column appears, with the clock
/// and the limit, only when some measurement recorded one.
#[test]
fn machine_page_shows_the_clock_while_timed() {
    let run = std::fs::read_to_string(fixture("native-ok/run.json")).unwrap();
    let page = |run: &str| {
        let results = tempfile::tempdir().unwrap();
        std::fs::write(results.path().join("run.json"), run).unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let out = report_into(
            results.path().to_str().unwrap(),
            out_dir.path(),
            &["--strict"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read_to_string(out_dir.path().join("machines/test-box-1234abcd.md")).unwrap()
    };
    let without = page(&run);
    assert!(!without.contains("Clock while timed"), "{without}");
    let with = page(&run.replacen(
        "\"details\": {}",
        r#""details": { "sm_clock_mhz": "median 1245, range 1230–1410 (5 readings while timed)", "clock_limited_by": "software power cap" }"#,
        1,
    ));
    assert!(
        with.contains("| Status | Clock while timed | Source |"),
        "{with}"
    );
    assert!(
        with.contains("| verified | 1245 MHz, software power cap |"),
        "{with}"
    );
    assert!(with.contains("| verified | — |"), "{with}");
}

/// A run file with one impossible sample keeps its other measurements; the dropped one is a
/// warning naming its JSON path and saying what was wrong (negative, not "missing"), and
/// `--strict` refuses it. A UTF-8 byte-order mark before the JSON is accepted.
#[test]
fn one_bad_measurement_is_dropped_not_the_file_and_a_bom_is_accepted() {
    let run = std::fs::read_to_string(fixture("native-ok/run.json")).unwrap();
    let results = tempfile::tempdir().unwrap();
    let bad = run.replacen("0.00101, 0.00099", "0.00101, -0.00099", 1);
    assert_ne!(bad, run);
    std::fs::write(results.path().join("run.json"), format!("\u{feff}{bad}")).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let results_arg = results.path().to_str().unwrap();
    let out = report_into(results_arg, out_dir.path(), &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: run.json: $.measurements[0].samples_s[1]: measurement dropped: expected a positive number of seconds, found -0.00099 (negative)"),
        "{err}"
    );
    let index = std::fs::read_to_string(out_dir.path().join("index.md")).unwrap();
    assert!(index.contains("silirep run v1: 2 measurements"), "{index}");
    assert!(
        index.contains("| bandwidth_triad | cpu | f64 | 1 | 0 |"),
        "{index}"
    );
    let strict = report_into(results_arg, out_dir.path(), &["--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
}

/// Text from result files cannot change the structure of the Markdown: a label with a pipe,
/// a newline and a heading marker stays inside its table cell and heading.
#[test]
fn markdown_tables_escape_text_from_the_data() {
    let run = std::fs::read_to_string(fixture("native-ok/run.json")).unwrap();
    let results = tempfile::tempdir().unwrap();
    let hostile = run.replacen(
        r#""label": "Test <Box> & Co""#,
        r#""label": "A|B\n# x *y*""#,
        1,
    );
    assert_ne!(hostile, run);
    std::fs::write(results.path().join("run.json"), hostile).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = report_into(results.path().to_str().unwrap(), out_dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(out_dir.path().join("index.md")).unwrap();
    assert!(
        index.contains(r"| A\|B # x \*y\* | f32 |"),
        "roofline row not escaped:\n{index}"
    );
    assert!(
        !index.lines().any(|l| l.starts_with("# x")),
        "a label started a heading:\n{index}"
    );
    // The roofline table has nine columns: ten unescaped pipes on the machine's row.
    let row = index
        .lines()
        .find(|l| l.starts_with(r"| A\|B") && l.contains("FLOP/byte"))
        .expect("roofline row");
    assert_eq!(row.replace(r"\|", "").matches('|').count(), 10, "{row}");
}

/// The committed results tree, read with a selection that puts a CPU and a GPU in one
/// analysis: two workloads that differ by 13× give a geometric mean with its range and the
/// reason it has no CI, never an interval from one degree of freedom.
#[test]
fn a_mean_over_two_disagreeing_workloads_says_why_it_has_no_ci() {
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("analyses.toml");
    std::fs::write(
        &path,
        "[[analysis]]\nslug = \"cpu-vs-h100\"\ntitle = \"CPU vs H100\"\n\
         machines = [\"AMD EPYC\", \"nvidia-h100-*\"]\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(
        "results/raw",
        dir.path(),
        &["--analyses", path.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    let page = std::fs::read_to_string(dir.path().join("cpu-vs-h100/index.md")).unwrap();
    assert!(
        page.contains("**Training-like work (compute-bound)**: H100 80GB HBM3 (lent) is faster in every one of the 2 workloads, each significantly, from "),
        "{page}"
    );
    assert!(
        page.contains("no CI on the mean: 2 workloads are too few for one (a CI needs at least 3)"),
        "{page}"
    );
    assert!(!page.contains("e10×"), "{page}");
    // The machine not selected still has its page, and the index says it is in no analysis.
    assert!(
        index.contains("none (not selected by any analysis)"),
        "{index}"
    );
    assert!(
        dir.path()
            .join("machines/nvidia-h200-8f0cc4b3.md")
            .is_file()
    );
}

/// Several analyses: one folder each, an index that links every one with its question and
/// its answer, machine pages shared, and a selector that matches nothing is a warning.
#[test]
fn analyses_file_chooses_the_report_sets() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into("results", dir.path(), &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    for expected in [
        "### [Apple M5 vs Apple M4 Pro](apple-m5-vs-m4-pro/index.md)",
        "### [NVIDIA H100 vs H200](h100-vs-h200/index.md)",
        "### [CPUs](cpus/index.md)",
        "**The question:** The M5 trains faster and the M4 Pro decodes faster",
        "- Inference and decode (memory-bound): Apple M4 Pro is 2.05× faster",
        "- Training-like work (compute-bound): no significant difference",
        "- Inference and decode (memory-bound): H200 141GB HBM3e (lent) is 1.",
        "(chosen in `analyses.toml`)",
    ] {
        assert!(
            index.contains(expected),
            "{expected} missing from:\n{index}"
        );
    }
    let apple = std::fs::read_to_string(dir.path().join("apple-m5-vs-m4-pro/index.md")).unwrap();
    assert!(
        apple.starts_with("# Apple M5 vs Apple M4 Pro\n\n**The question:**"),
        "{apple}"
    );
    assert!(
        !apple.contains("H100"),
        "cross-class rows crowd the Apple analysis"
    );
    assert!(
        apple.contains("(../machines/apple-m5-mac17-2.md)"),
        "{apple}"
    );
    assert!(
        dir.path()
            .join("apple-m5-vs-m4-pro/charts/roofline_f16.svg")
            .is_file()
    );
    // A selector that matches nothing is named.
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("analyses.toml");
    std::fs::write(
        &path,
        "[[analysis]]\nslug = \"x\"\ntitle = \"X\"\nmachines = [\"class:cpu\", \"no-such-*\"]\n",
    )
    .unwrap();
    let out = report_into(
        "results",
        dir.path(),
        &["--analyses", path.to_str().unwrap()],
    );
    assert!(
        stderr(&out).contains(
            "warning: analyses.toml: analysis \"x\": machine selector \"no-such-*\" matches no machine in the results"
        ),
        "{}",
        stderr(&out)
    );
    let strict = report_into(
        "results",
        dir.path(),
        &["--analyses", path.to_str().unwrap(), "--strict"],
    );
    assert_eq!(strict.status.code(), Some(1));
    // A broken analyses file is an error naming it, before anything is written.
    std::fs::write(
        &path,
        "[[analysis]]\nslug = \"Bad Slug\"\ntitle = \"X\"\nmachines = [\"*\"]\n",
    )
    .unwrap();
    let empty_out = tempfile::tempdir().unwrap();
    let out = report_into(
        "results",
        empty_out.path(),
        &["--analyses", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("slug \"Bad Slug\" must be lower-case"),
        "{}",
        stderr(&out)
    );
    assert!(!empty_out.path().join("index.md").exists());
}

/// Result files written before machine ids named their accelerator still load, and two such
/// hosts built from one image (same old id) with different GPUs are two machines.
#[test]
fn old_machine_ids_without_the_accelerator_are_told_apart() {
    let run = std::fs::read_to_string(fixture("native-ok/run.json")).unwrap();
    let results = tempfile::tempdir().unwrap();
    for (file, gpu) in [
        ("a.json", "NVIDIA H100 80GB HBM3"),
        ("b.json", "NVIDIA H200"),
    ] {
        let run = run.replacen("Test <Box> & Co", gpu, 1);
        let with_gpu = run.replacen(
            r#""accelerator": null"#,
            &format!(r#""accelerator": {{ "name": "{gpu}", "vendor": "NVIDIA", "compute_units": 132, "memory_bytes": null, "unified_memory": false, "driver_version": null, "runtime_version": null, "details": {{}} }}"#),
            1,
        );
        assert_ne!(with_gpu, run);
        std::fs::write(results.path().join(file), with_gpu).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(results.path().to_str().unwrap(), dir.path(), &["--strict"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pages: Vec<String> = std::fs::read_dir(dir.path().join("machines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(
        pages
            .iter()
            .any(|p| p.starts_with("nvidia-h100-80gb-hbm3-")),
        "{pages:?}"
    );
    assert!(
        pages.iter().any(|p| p.starts_with("nvidia-h200-")),
        "{pages:?}"
    );
}

/// An eight-GPU machine, generated (no x8 machine was lent): every ordered pair's peer copy
/// and an all-reduce ladder. The report draws the 8 × 8 matrix, the bus-bandwidth chart with
/// the datasheet NVLink line, and the links as recorded.
#[test]
fn an_eight_gpu_run_gets_its_peer_matrix_and_collective_chart() {
    let template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("native-ok/run.json")).unwrap())
            .unwrap();
    let mut run = template.clone();
    run["machine"]["label"] = "Generated 8×H200".into();
    run["machine"]["id"] = "nvidia-h200-0000beef".into();
    run["machine"]["accelerator"] = serde_json::json!({
        "name": "NVIDIA H200", "vendor": "NVIDIA", "compute_units": 132,
        "memory_bytes": 150_000_000_000u64, "unified_memory": false, "driver_version": null,
        "runtime_version": null, "details": {}
    });
    let base = template["measurements"][0].clone();
    let mut measurements = Vec::new();
    let mut push = |spec: silirep_core::KernelSpec, rate: f64, topology: serde_json::Value| {
        let mut m = base.clone();
        let spec_json = serde_json::to_value(&spec).unwrap();
        m["kernel"] = spec_json["kernel"].clone();
        m["params"] = spec_json["params"].clone();
        let bytes = spec.bytes().unwrap();
        m["flops"] = serde_json::Value::Null;
        m["bytes"] = bytes.into();
        let t = bytes / rate;
        m["samples_s"] = serde_json::json!([t, t * 1.001, t * 0.999, t, t * 1.002, t * 0.998]);
        m["topology"] = topology;
        measurements.push(m);
    };
    let nv18 = |a: u32, b: u32| {
        serde_json::json!({
            "devices": [
                {"id": a.to_string(), "name": "NVIDIA H200", "pci_bus_id": null},
                {"id": b.to_string(), "name": "NVIDIA H200", "pci_bus_id": null}
            ],
            "links": [{"from": a.to_string(), "to": b.to_string(), "kind": "nvlink",
                       "label": "NV18", "attributes": {"nvlink_count": "18"}}]
        })
    };
    for src in 0..8u32 {
        for dst in (0..8u32).filter(|d| *d != src) {
            push(
                silirep_core::KernelSpec::PeerCopy {
                    src_device: src,
                    dst_device: dst,
                    bytes: 1 << 30,
                },
                390e9 + f64::from(src + dst) * 1e9,
                nv18(src, dst),
            );
        }
    }
    for bytes in [1u64 << 20, 64 << 20, 1 << 30, 4 << 30] {
        push(
            silirep_core::KernelSpec::Collective {
                op: silirep_core::CollectiveOp::AllReduce,
                bytes,
                dtype: silirep_core::Dtype::Bf16,
                devices: (0..8).collect(),
            },
            200e9,
            serde_json::Value::Null,
        );
    }
    run["measurements"] = measurements.into();
    let results = tempfile::tempdir().unwrap();
    std::fs::write(
        results.path().join("x8.json"),
        serde_json::to_string(&run).unwrap(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = report_into(results.path().to_str().unwrap(), out.path(), &["--strict"]);
    assert!(report.status.success(), "{}", stderr(&report));
    let index = std::fs::read_to_string(out.path().join("index.md")).unwrap();
    for expected in [
        "## Interconnect",
        "Peer-to-peer copy bandwidth at 1.00 GiB",
        "| GPU 7 | 397 GB/s | 398 GB/s | 399 GB/s | 400 GB/s | 401 GB/s | 402 GB/s | 403 GB/s | — |",
        "| 0 | 1 | nvlink | NV18 | nvlink_count=18 |",
        "| all_reduce | Generated 8×H200, 8 GPUs, bf16 (cpu) | 4.00 GiB | 350 GB/s",
        "78% of NVLink 4",
    ] {
        assert!(
            index.contains(expected),
            "{expected} missing from:\n{index}"
        );
    }
    assert!(
        out.path()
            .join("charts/collective_all_reduce.svg")
            .is_file()
    );
    assert!(
        out.path()
            .join("charts/p2p_nvidia_h200_0000beef.png")
            .is_file()
    );
}

/// The seed's traffic captures are shown for what they are: two recorded nothing.
#[test]
fn seed_captures_are_charted_with_their_caveats() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into(SEED, dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    assert!(index.contains("## Traffic captures"), "{index}");
    assert!(index.contains("the capture recorded nothing"), "{index}");
    assert!(dir.path().join("charts/capture_2_tp_traffic.svg").is_file());
}

/// The report of one machine (the committed CPU run): a first screen of headline figures and
/// its roofline, no comparison headings with nothing under them, one roof per precision that
/// accounts for every measurement (the sweep that streamed faster than the bandwidth kernels
/// raises the memory roof and says so), and any point still above its roof says why.
#[test]
fn a_single_machine_report_has_a_first_screen_and_one_roof_per_precision() {
    let dir = tempfile::tempdir().unwrap();
    let out = report_into("results/raw/amd-epyc-35c1aed4", dir.path(), &["--strict"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    for absent in [
        "## Which machine for what",
        "## GEMM by size",
        "## All comparisons",
        "## The answer",
    ] {
        assert!(!index.contains(absent), "empty section {absent}:\n{index}");
    }
    assert!(index.contains("## Headline figures"), "{index}");
    assert!(
        index.contains("the intensity sweep beat the best bandwidth kernel"),
        "{index}"
    );
    assert!(
        !index.contains("sweep fit"),
        "a second ridge point:\n{index}"
    );
    // Every "% of roof" above 100 carries its reason.
    for line in index.lines().filter(|l| l.starts_with('|')) {
        let last = line
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or("")
            .trim();
        if let Some(pct) = last.split('%').next().and_then(|p| p.parse::<f64>().ok())
            && pct > 100.5
        {
            assert!(last.contains("above the roof"), "unexplained: {line}");
        }
    }
}
