//! End-to-end: model-level predictions on the repository's own results — `silirep predict`
//! and the "Model-level predictions" section of `silirep report` — checked against values
//! worked out independently: the seed scenario's hand-computed plan in `docs/model.md`
//! (M5 13.8 TFLOP/s and 119 GB/s, M4 Pro 6.08 TFLOP/s and 253 GB/s, Thunderbolt 37.6 Gbit/s),
//! and for silirep's own decode kernel the bytes silirep-core counts over the measured memory
//! roof.

use serde_json::Value;
use silirep_core::{Dtype, KernelSpec, LayerShape};
use std::process::{Command, Output};

fn silirep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_silirep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("the silirep binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn predict_json(args: &[&str]) -> Value {
    let mut all = vec!["predict", "results/", "--json"];
    all.extend_from_slice(args);
    let out = silirep(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("--json prints JSON")
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * b.abs()
}

fn roof(machine: &Value, kind: &str) -> f64 {
    machine["roofs"]["roofs"]["roofs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"]["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} roof in {machine}"))["rate"]
        .as_f64()
        .unwrap()
}

#[test]
fn apple_pair_reproduces_the_hand_worked_seed_plan() {
    let json = predict_json(&[
        "--prefill",
        "Apple M5",
        "--decode",
        "Apple M4 Pro",
        "--link",
        "37.6Gbps",
    ]);
    let machines = json["machines"].as_array().unwrap();
    let m4 = &machines[0];
    let m5 = &machines[1];
    assert_eq!(m5["machine"]["label"], "Apple M5");
    // The roofs are the machines' own rooflines, which the README quotes.
    assert!(close(roof(m5, "compute"), 13.8e12, 0.005));
    assert!(close(roof(m5, "memory"), 119e9, 0.005));
    assert!(close(roof(m4, "compute"), 6.08e12, 0.005));
    assert!(close(roof(m4, "memory"), 253e9, 0.005));
    let options = json["pair"]["plan"]["Ok"]["serving"]["options"]
        .as_array()
        .unwrap();
    // docs/model.md, worked by hand from those roofs: M5 alone 31.77 s, M4 Pro alone 16.56 s,
    // M5 → M4 Pro 15.44 s with a 24.3 ms transfer; decode 8.29 and 17.63 tokens/s.
    let e2e: Vec<f64> = options
        .iter()
        .map(|o| o["end_to_end_s"].as_f64().unwrap())
        .collect();
    assert!(close(e2e[0], 16.56, 0.005), "{e2e:?}");
    assert!(close(e2e[1], 31.77, 0.005), "{e2e:?}");
    assert!(close(e2e[3], 15.44, 0.005), "{e2e:?}");
    assert!(close(
        options[3]["kv_transfer_s"].as_f64().unwrap(),
        0.0243,
        0.01
    ));
    assert!(close(
        options[1]["decode_tokens_per_s"].as_f64().unwrap(),
        8.29,
        0.005
    ));
    assert!(close(
        options[0]["decode_tokens_per_s"].as_f64().unwrap(),
        17.63,
        0.005
    ));
    assert_eq!(
        json["pair"]["plan"]["Ok"]["prompt_break_even"]["prompt_tokens"],
        52
    );

    let text = stdout(&silirep(&[
        "predict",
        "results/",
        "--prefill",
        "Apple M5",
        "--decode",
        "Apple M4 Pro",
        "--link",
        "37.6Gbps",
    ]));
    assert!(
        text.contains("prefill on Apple M5 → decode on Apple M4 Pro ◀  974 ms  17.6 (memory)"),
        "{text}"
    );
    assert!(text.contains("pays from a 52-token prompt on"), "{text}");
}

#[test]
fn the_apple_analysis_page_states_bounds_efficiencies_and_the_split_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = silirep(&["report", "results/", "-o", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("apple-m5-vs-m4-pro/index.md")).unwrap();
    let section = page
        .split("## Model-level predictions")
        .nth(1)
        .expect("the section is on the page");
    // Each machine's decode bound at batch 1, and its prefill bound with the roof that binds.
    assert!(
        section.contains("| Apple M5 | 893 ms (compute (f16)) | 1.01 s | 1: 8.30 (memory);"),
        "{section}"
    );
    assert!(
        section.contains("| Apple M4 Pro | 2.03 s (compute (f16)) | 2.09 s | 1: 17.7 (memory);"),
        "{section}"
    );
    // The M5's measured PyTorch decode (7.75 tokens/s) against its bound at an empty cache
    // (119 GB/s over 14.2 GB per token): 93%.
    assert!(
        section.contains("| pytorch_mps | 7.75 tokens/s | 8.37 tokens/s | 93% | memory |"),
        "{section}"
    );
    // The M4 Pro's "decode" rate that equals its prefill rate is above any decode bound.
    assert!(
        section.contains("| pytorch_mps | 368 tokens/s | 17.8 tokens/s | 2067% | memory | the file does not record the context length"),
        "{section}"
    );
    // The planner's verdict on the seed's split, with the reason, over the configured link.
    assert!(
        section.contains("Link: Thunderbolt 5 bridge, 4.70 GB/s per direction (measured: iperf3"),
        "{section}"
    );
    assert!(
        section.contains(
            "At the roofs the split (prefill on Apple M5, decode on Apple M4 Pro) pays: 15.4 s end \
             to end against 16.5 s for Apple M4 Pro alone, 1.12 s saved (6.7%) — Apple M5's \
             prefill is 1.14 s shorter and the KV cache crosses the link in 24.3 ms."
        ),
        "{section}"
    );
    assert!(section.contains("The link is not the bottleneck: holds at the roofs"));
    // The HTML page carries the same section.
    let html = std::fs::read_to_string(dir.path().join("apple-m5-vs-m4-pro/index.html")).unwrap();
    assert!(html.contains("<h2 id=\"model-level-predictions\">Model-level predictions</h2>"));
    // Without a configured link, the H100 vs H200 plan says its link is a datasheet's.
    let hopper = std::fs::read_to_string(dir.path().join("h100-vs-h200/index.md")).unwrap();
    assert!(
        hopper.contains("Link: PCIe 5.0 x16, 63.0 GB/s per direction (datasheet:"),
        "{hopper}"
    );
}

#[test]
fn silirep_decode_on_hopper_is_within_its_stated_efficiency_of_the_memory_roof() {
    for machine in ["nvidia-h100-80gb-hbm3-1f82d312", "nvidia-h200-8f0cc4b3"] {
        let json = predict_json(&["--machine", machine]);
        let memory = roof(&json["machines"][0], "memory");
        let decodes: Vec<&Value> = json["measured"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["workload"] == "decode")
            .collect();
        assert_eq!(decodes.len(), 4, "{machine}: batches 1, 4, 16, 64");
        for e in decodes {
            let params = e["params"].as_str().unwrap();
            let batch: u64 = params
                .strip_prefix("batch=")
                .and_then(|p| p.split(' ').next())
                .and_then(|b| b.parse().ok())
                .unwrap();
            // Independently: 32 Mistral-7B layers' weights (and activations) once per step,
            // over the machine's measured memory roof.
            let bytes = KernelSpec::Decode {
                batch,
                layers: 32,
                shape: LayerShape::MISTRAL_7B,
                context: 0,
                dtype: Dtype::F16,
            }
            .bytes()
            .unwrap();
            let bound = batch as f64 * memory / bytes;
            let (measured, stated_bound, efficiency) = (
                e["measured"].as_f64().unwrap(),
                e["bound"].as_f64().unwrap(),
                e["efficiency"].as_f64().unwrap(),
            );
            assert!(close(stated_bound, bound, 1e-9), "{machine} {params}");
            assert!(
                measured <= bound,
                "{machine} {params}: above the memory roof"
            );
            assert!(close(efficiency, measured / bound, 1e-9));
            // Hopper decodes at 55–75% of the bandwidth bound in these runs.
            assert!(
                (0.5..0.8).contains(&efficiency),
                "{machine} {params}: {efficiency}"
            );
            assert_eq!(e["bound_by"]["type"], "memory");
        }
    }
}

#[test]
fn unknown_names_are_errors_that_name_the_closest() {
    let out = silirep(&["predict", "results/", "--machine", "Apple M6"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no machine \"Apple M6\""), "{err}");
    assert!(err.contains("did you mean \"apple m5\"?"), "{err}");
    assert!(
        err.contains("\"Apple M4 Pro\" (apple-m4-pro-mac16-8)"),
        "{err}"
    );
    let out = silirep(&[
        "predict",
        "results/",
        "--model",
        "llama-3-7b",
        "--machine",
        "Apple M5",
    ]);
    let err = stderr(&out);
    assert!(err.contains("unknown model \"llama-3-7b\""), "{err}");
    assert!(
        err.contains("did you mean \"llama-3-70b\" or \"llama-3-8b\"?"),
        "{err}"
    );
    let out = silirep(&["predict", "results/", "--prefill", "Apple M5"]);
    assert!(stderr(&out).contains("--prefill and --decode go together"));
    let out = silirep(&[
        "predict",
        "results/",
        "--prefill",
        "Apple M5",
        "--decode",
        "Apple M4 Pro",
        "--link",
        "40Gb",
    ]);
    assert!(
        stderr(&out).contains("unknown unit \"Gb\""),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

/// The seed's disaggregated run (`distributed/ray_disaggregated_results.json`) compared phase
/// by phase once a reader turns it into records: its prefill, its KV move (the file's own byte
/// count over the configured 37.6 Gbit/s link: 24.3 ms) and its decode beside their bounds.
/// Until then the page says no measured split is in the results, and the inventory says why.
#[test]
fn the_seed_split_is_compared_phase_by_phase_when_its_records_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = silirep(&["report", "results/", "-o", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("apple-m5-vs-m4-pro/index.md")).unwrap();
    let index = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    let ray = "imported/mac-ml-benchmark/distributed/ray_disaggregated_results.json";
    match page.lines().find(|l| l.starts_with(&format!("- {ray}: "))) {
        Some(line) => {
            assert!(
                line.contains("moving the KV cache (114 MB, bytes from the file) took 2.74 s, 113× the 24.3 ms the link needs"),
                "{line}"
            );
            assert!(
                line.contains("prefill on Apple M5 took 2.93× its bound"),
                "{line}"
            );
            assert!(
                line.contains("decode on Apple M4 Pro took 2.24× its bound"),
                "{line}"
            );
        }
        None => {
            assert!(page.contains("No measured split run between the two machines"));
            assert!(
                index.contains(&format!(
                    "| `{ray}` | skipped: not a format silirep knows |"
                )),
                "the split file is read, but the page does not compare it"
            );
        }
    }
}
