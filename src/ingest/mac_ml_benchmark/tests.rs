//! The importers on hand-written documents of each shape, hostile ones included.

use super::*;
use serde_json::json;

fn machine() -> MachineKey {
    MachineKey {
        id: "apple-m9".into(),
        label: "Apple M9".into(),
    }
}

fn import(
    name: &str,
    doc: serde_json::Value,
) -> (Option<&'static str>, Imported, Result<(), ImportError>) {
    let key = machine();
    let view = FileView {
        rel_path: name,
        file_name: name,
        doc: &doc,
        folder_machine: &key,
        folder_described: true,
    };
    let all = super::super::importers();
    let Some(importer) = all.iter().find(|i| i.recognises(&view)) else {
        return (None, Imported::default(), Ok(()));
    };
    let mut out = Imported::default();
    let result = importer.import(&view, &mut out);
    (Some(importer.format_name()), out, result)
}

#[test]
fn gemm_list_keeps_mean_std_n() {
    let (format, out, result) = import(
        "pytorch_mps_benchmarks.json",
        json!({"framework": "pytorch_mps", "benchmarks": {"gemm": [
            {"name": "gemm_512x512", "size": "512x512", "dtype": "float16", "time_ms": 0.5,
             "tflops": 0.536870912, "extra": {"std_ms": 0.1, "iterations": 20}}]}}),
    );
    result.unwrap();
    assert_eq!(format, Some("mac-ml-benchmark benchmark lists"));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let r = &out.records[0];
    assert_eq!(
        r.timing,
        Some(Timing::Summary {
            mean_s: 0.0005,
            std_s: 0.0001,
            n: 20
        })
    );
    assert_eq!(r.spec.name(), "gemm");
    assert_eq!(r.source.json_path, "$.benchmarks.gemm[0]");
    assert_eq!(r.machine, machine());
}

#[test]
fn a_rate_that_contradicts_the_formula_warns() {
    let (_, out, result) = import(
        "x.json",
        json!({"framework": "mlx", "benchmarks": {"gemm": [
            {"size": "512x512", "dtype": "float32", "time_ms": 0.5, "tflops": 9.0}]}}),
    );
    result.unwrap();
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].message.contains("counts work differently"));
}

#[test]
fn attention_and_transformer_block_records() {
    let (_, out, result) = import(
        "x.json",
        json!({"framework": "mlx", "benchmarks": {
            "attention": [{"size": "seq=512", "dtype": "float16", "time_ms": 1.0,
                "extra": {"batch_size": 1, "num_heads": 32, "head_dim": 128, "seq_len": 512}}],
            "transformer_block": [{"size": "", "dtype": "float16", "time_ms": 21.6,
                "extra": {"hidden_size": 4096, "num_heads": 32, "intermediate_size": 14336, "seq_len": 256}}]
        }}),
    );
    result.unwrap();
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.records[0].spec.name(), "attention");
    assert_eq!(out.records[0].timing, Some(Timing::Single(0.001)));
    assert_eq!(out.records[1].spec.name(), "layer_forward");
}

#[test]
fn errors_inside_records_are_recorded_not_fatal() {
    let (_, out, result) = import(
        "mlx_benchmarks.json",
        json!({"framework": "mlx", "benchmarks": {"mistral_mlx": [
            {"name": "mistral_mlx", "size": "", "dtype": "", "time_ms": 0.0,
             "extra": {"error": "401 Client Error.\n\nRepository Not Found"}}]}}),
    );
    result.unwrap();
    let r = &out.records[0];
    assert_eq!(r.error.as_deref(), Some("401 Client Error."));
    assert!(r.timing.is_none());
}

#[test]
fn bandwidth_sizes_are_gib() {
    // 0.25 GiB read in 2.5 ms = 107.37 GB/s.
    let (_, out, result) = import(
        "memory_benchmarks.json",
        json!({"framework": "pytorch_mps", "benchmarks": {
            "bandwidth": [{"name": "sequential_read", "size_gb": 0.25, "time_ms": 2.5,
                "bandwidth_gbs": 107.3741824, "extra": null}],
            "max_allocation": {"name": "max_allocation", "size_gb": 12.0, "time_ms": 0.0}}}),
    );
    result.unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].spec.name(), "bandwidth_read");
}

#[test]
fn gemm_comparison_with_and_without_spread() {
    let (format, out, result) = import(
        "pytorch_vs_mlx_detailed.json",
        json!({"mlx": [{"size": 1024, "dtype": "float32", "avg_ms": 1.0, "std_ms": 0.1, "samples": 50},
                       {"size": 2048, "dtype": "float32", "avg_ms": 8.0}]}),
    );
    result.unwrap();
    assert_eq!(format, Some("mac-ml-benchmark GEMM comparison"));
    assert_eq!(out.records[0].timing.as_ref().unwrap().n(), 50);
    assert_eq!(out.records[1].timing, Some(Timing::Single(0.008)));
    assert_eq!(out.records[1].framework, "mlx");
}

#[test]
fn layer_benchmark_yields_forward_backward_and_parts() {
    let (format, out, result) = import(
        "layer_benchmark_float16.json",
        json!({"mlx": {"256": {"attention_ms": 2.5, "attention_tflops": 14.15, "ffn_ms": 6.6,
                               "full_layer_ms": 9.11, "backward_ms": 18.25}}}),
    );
    result.unwrap();
    assert_eq!(format, Some("mac-ml-benchmark layer benchmark"));
    let names: Vec<String> = out.records.iter().map(|r| r.spec.name()).collect();
    assert_eq!(
        names,
        [
            "layer_forward",
            "layer_backward",
            "layer_attention_forward",
            "layer_ffn_forward"
        ]
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn framework_comparison_and_finetune_rates() {
    let (_, out, result) = import(
        "framework_comparison.json",
        json!({"hardware": {"chip": "Apple M9"}, "frameworks": {
            "mlx": {"model": "m", "precision": "4-bit quantized", "inference_tokens_per_sec": 25.0}}}),
    );
    result.unwrap();
    let r = &out.records[0];
    assert_eq!(r.spec.name(), "model_decode");
    assert!((r.tokens_per_s().unwrap() - 25.0).abs() < 1e-9);

    let (_, out, result) = import(
        "pytorch_mps_finetuning.json",
        json!({"benchmark": "pytorch_mps_finetuning", "model": "m", "precision": "float16",
               "tokens": 5120, "time_seconds": 48.0, "final_loss": null}),
    );
    result.unwrap();
    let r = &out.records[0];
    assert_eq!(r.framework, "pytorch_mps");
    assert!((r.tokens_per_s().unwrap() - 5120.0 / 48.0).abs() < 1e-9);
}

#[test]
fn wrong_types_name_the_path() {
    let (_, _, result) = import(
        "x.json",
        json!({"framework": "mlx", "benchmarks": {"gemm": [{"size": 512, "dtype": "float16", "time_ms": 1.0}]}}),
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "$.benchmarks.gemm[0].size: expected a string, found the number 512"
    );
}

#[test]
fn summaries_are_not_imported_and_captures_are_time_series() {
    let (format, out, _) = import("mfu_utilization.json", json!({"model_level_mfu": {}}));
    assert_eq!(format, Some("mac-ml-benchmark MFU summary"));
    assert!(out.not_imported.is_some());
    // A capture is kept as a time series (not records), with what is wrong with it.
    let (format, out, result) = import(
        "x.json",
        json!({"metadata": {}, "markers": [], "samples": []}),
    );
    result.unwrap();
    assert_eq!(format, Some("mac-ml-benchmark interconnect capture"));
    assert!(out.records.is_empty());
    assert_eq!(out.captures.len(), 1);
    assert_eq!(
        out.captures[0].caveats.len(),
        2,
        "{:?}",
        out.captures[0].caveats
    );
    let (format, _, _) = import("x.json", json!({"hello": "world"}));
    assert_eq!(format, None);
}

#[test]
fn unusable_times_are_named_for_what_they_are() {
    assert_eq!(
        no_time_reason("time_ms", None),
        "no time recorded (time_ms is missing)"
    );
    assert_eq!(
        no_time_reason("time_ms", Some(0.0)),
        "no time recorded (time_ms is 0)"
    );
    assert_eq!(
        no_time_reason("avg_ms", Some(-2.5)),
        "invalid time: avg_ms is negative (-2.5)"
    );
}

fn inference(runs: serde_json::Value, averaged: serde_json::Value) -> serde_json::Value {
    json!({"role": "baseline", "machine": "M5", "model": "m", "prompt_tokens": 100,
           "dtype": "float16", "averaged": averaged, "all_runs": runs})
}

#[test]
fn inference_summaries_are_checked_against_their_runs() {
    let runs = json!([
        {"prefill_time_ms": 100.0, "decode_time_ms": 1000.0, "generated_tokens": 10,
         "tokens_per_sec": 10.0, "total_e2e_ms": 1100.0},
        {"prefill_time_ms": 300.0, "decode_time_ms": 3000.0, "generated_tokens": 10,
         "tokens_per_sec": 5.0, "total_e2e_ms": 3300.0}
    ]);
    // 150 is not the mean prefill (200); 7.5 is the mean of rates, 20 / 4 s = 5 the rate.
    let (format, out, result) = import(
        "baseline.json",
        inference(
            runs,
            json!({"prefill_time_ms": 150.0, "tokens_per_sec": 7.5}),
        ),
    );
    result.unwrap();
    assert_eq!(format, Some("mac-ml-benchmark distributed inference"));
    let messages: Vec<String> = out.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("$.averaged.prefill_time_ms")
                && m.contains("150")
                && m.contains("(200)")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("$.all_runs[1].tokens_per_sec") && m.contains("3.333")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("$.averaged.tokens_per_sec")
                && m.contains("7.5000")
                && m.contains("5.0000")),
        "{messages:#?}"
    );
    let phases: Vec<String> = out.records.iter().map(|r| r.spec.name()).collect();
    assert_eq!(
        phases,
        ["model_prefill", "model_decode", "model_end_to_end"]
    );
    // Equal token counts: the end-to-end record keeps one sample per run.
    assert_eq!(out.records[2].timing, Some(Timing::Samples(vec![1.1, 3.3])));
    assert_eq!(out.records[0].machine.id, "apple-m5-mac17-2");
}

#[test]
fn hostile_inference_files_name_the_path() {
    let run = json!({"prefill_time_ms": -1.0, "decode_time_ms": 1.0, "generated_tokens": 1,
                     "total_e2e_ms": 1.0});
    let (_, _, result) = import("b.json", inference(json!([run]), json!({})));
    assert_eq!(
        result.unwrap_err().to_string(),
        "$.all_runs[0].prefill_time_ms: expected a positive time in milliseconds, found the \
         number -1.0"
    );
    let (_, _, result) = import("b.json", inference(json!([]), json!({})));
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("$.all_runs: expected at least one run")
    );
    let mut doc = inference(json!([{"prefill_time_ms": 1.0}]), json!({}));
    doc["machine"] = json!("M9");
    let (_, _, result) = import("b.json", doc);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("$.machine: expected one of the project's machines")
    );
    // NaN (read as null) where a time must be.
    let (_, _, result) = import(
        "b.json",
        inference(json!([{"prefill_time_ms": null}]), json!({})),
    );
    assert!(
        result
            .unwrap_err()
            .to_string()
            .starts_with("$.all_runs[0].prefill_time_ms")
    );
}

#[test]
fn capture_samples_that_cannot_be_used_are_left_out_with_a_warning() {
    let (_, out, result) = import(
        "c_traffic.json",
        json!({"metadata": {"interface": "bridge0", "sample_rate_hz": 100, "num_samples": 3},
               "markers": [{"timestamp": 0.5, "label": "layer_0_start"}],
               "samples": [
                   {"timestamp": 0.01, "send_rate_gbs": 1.0, "recv_rate_gbs": 2.0},
                   {"timestamp": 0.02, "send_rate_gbs": null, "recv_rate_gbs": 2.0},
                   {"timestamp": -0.03, "send_rate_gbs": 1.0, "recv_rate_gbs": 1e300}]}),
    );
    result.unwrap();
    let c = &out.captures[0];
    assert_eq!(c.samples.len(), 1);
    assert_eq!(c.markers.len(), 1);
    // The folder describes its machine, so the capture belongs to it.
    assert_eq!(c.machines, vec![machine()]);
    // No byte counters: totals are the rates over the intervals, 0.01 s at 1 and 2 GB/s.
    assert_eq!((c.send_bytes, c.recv_bytes), (1e7, 2e7));
    let messages: Vec<String> = out.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        messages[0].contains("$.samples[1]: a sample with a missing (NaN)"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("$.samples[2]: a sample with a negative"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("counts 3 samples, the file holds 1"),
        "{messages:?}"
    );
}
