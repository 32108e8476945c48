//! End-to-end: the readers of other tools' files on the repository's copy of the seed's
//! two-machine experiments (`results/imported/mac-ml-benchmark/distributed/`), on real iperf3
//! captures, on nccl-tests logs and llama-bench files written from their documented formats,
//! and on hostile variants of each. Every problem must be a warning or a failed file naming
//! the file and position, never a panic.

use silirep::ingest::{self, Dataset, FileStatus, Record, Timing};
use silirep_core::{CollectiveOp, KernelSpec, LinkDirection, ModelPhase};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load(path: &str) -> Dataset {
    ingest::load_dir(&repo(path)).expect("the directory loads")
}

fn status<'a>(d: &'a Dataset, file: &str) -> &'a FileStatus {
    &d.files
        .iter()
        .find(|f| f.file == file)
        .unwrap_or_else(|| panic!("{file} not listed in {:?}", d.files))
        .status
}

fn records<'a>(d: &'a Dataset, file: &str) -> Vec<&'a Record> {
    d.records.iter().filter(|r| r.source.file == file).collect()
}

fn warnings(d: &Dataset, file: &str) -> Vec<String> {
    d.warnings
        .iter()
        .filter(|w| w.file == file)
        .map(|w| w.to_string())
        .collect()
}

fn phase_of(r: &Record) -> ModelPhase {
    match &r.spec {
        KernelSpec::Model { phase, .. } => *phase,
        other => panic!("not a model record: {other:?}"),
    }
}

fn find(records: &[&Record], phase: ModelPhase) -> Vec<Record> {
    records
        .iter()
        .filter(|r| phase_of(r) == phase)
        .map(|r| (*r).clone())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const M5: &str = "apple-m5-mac17-2";
const M4_PRO: &str = "apple-m4-pro-mac16-8";

#[test]
fn seed_baseline_inference_becomes_prefill_decode_and_end_to_end_on_the_m5() {
    let d = load("results/imported/mac-ml-benchmark/distributed");
    let file = "baseline_M5.json";
    assert!(matches!(
        status(&d, file),
        FileStatus::Loaded { records: 3, .. }
    ));
    let rs = records(&d, file);
    assert!(
        rs.iter()
            .all(|r| r.machine.id == M5 && r.machine.label == "Apple M5")
    );

    let prefill = &find(&rs, ModelPhase::Prefill)[0];
    assert_eq!(
        prefill.timing,
        Some(Timing::Samples(vec![
            1456.7472920000027e-3,
            1312.1949169999994e-3,
            1280.607333000006e-3
        ]))
    );
    assert!(matches!(
        prefill.spec,
        KernelSpec::Model {
            seq_len: 871,
            tokens: 871,
            ..
        }
    ));
    // TTFT is kept apart from the prefill time, as the mean of the runs' ttft_ms.
    let ttft = prefill.reported["ttft_s"];
    assert!((ttft - 1.5207752503333343).abs() < 1e-12, "{ttft}");

    // Decode: the per-token latencies the file keeps (10 per run) are the samples.
    let decode = &find(&rs, ModelPhase::Decode)[0];
    assert_eq!(decode.timing.as_ref().unwrap().n(), 30);
    let over_runs = decode.reported["tokens_per_s_over_runs"];
    let expected = 715.0 / (34648.402167 + 45911.32070899999 + 43837.77779199999) * 1e3;
    assert!(
        (over_runs - expected).abs() < 1e-9,
        "{over_runs} vs {expected}"
    );
    assert!(
        decode
            .notes
            .iter()
            .any(|n| n.contains("first 10, 10, 10 tokens"))
    );

    // The file's average rate is a mean of per-run rates: both numbers, and why.
    let w = warnings(&d, file);
    assert!(
        w.iter().any(|w| w.contains("$.averaged.tokens_per_sec")
            && w.contains("5.7582")
            && w.contains("5.7477")
            && w.contains("mean of per-run")),
        "{w:#?}"
    );
    // Runs of different lengths: the end-to-end record is one aggregate value.
    let e2e = &find(&rs, ModelPhase::EndToEnd)[0];
    assert!(matches!(e2e.spec, KernelSpec::Model { tokens: 715, .. }));
    assert!(matches!(e2e.timing, Some(Timing::Single(_))));
}

#[test]
fn seed_disaggregated_runs_put_each_stage_on_the_machine_that_ran_it() {
    let d = load("results/imported/mac-ml-benchmark/distributed");
    let file = "ray_disaggregated_results.json";
    let rs = records(&d, file);
    let decode = &find(&rs, ModelPhase::Decode)[0];
    assert_eq!(decode.machine.id, M4_PRO);
    assert_eq!(decode.machine.label, "Apple M4 Pro");
    assert_eq!(decode.timing.as_ref().unwrap().n(), 3);
    assert_eq!(find(&rs, ModelPhase::Prefill)[0].machine.id, M5);
    let kv = &find(&rs, ModelPhase::KvTransfer)[0];
    assert!(kv.notes.iter().any(|n| n.contains("spans both machines")));
    let Some(Timing::Samples(kv_s)) = &kv.timing else {
        panic!("{:?}", kv.timing)
    };
    // Run 1: the five stages of the KV cache's move, summed.
    let run1 = 45.49220799999887
        + 124.22654199998817
        + 276.27825000000666
        + 18.91749999998501
        + 818.2968750000015;
    assert!((kv_s[0] * 1e3 - run1).abs() < 1e-9);
    assert_eq!(kv.reported["kv_bytes"], 108.875 * 1024.0 * 1024.0);
    let w = warnings(&d, file);
    assert!(
        w.iter()
            .any(|w| w.contains("8.7878") && w.contains("8.5065")),
        "{w:#?}"
    );

    // Raw TCP: the averaged throughput is a mean of rates three times the rate over all runs.
    let file = "prefill_results.json";
    let w = warnings(&d, file);
    assert!(
        w.iter().any(|w| w.contains("$.averaged.tb_throughput_gbps")
            && w.contains("4.8295")
            && w.contains("1.5959")),
        "{w:#?}"
    );
    // The decode summary's tokens/s is not its tokens over its time.
    assert!(
        w.iter()
            .any(|w| w.contains("$.decode_results.tokens_per_sec")
                && w.contains("8.7377")
                && w.contains("8.5633")),
        "{w:#?}"
    );
    let rs = records(&d, file);
    let decodes = find(&rs, ModelPhase::Decode);
    assert_eq!(decodes.len(), 1);
    assert_eq!(decodes[0].machine.id, M4_PRO);
    let transfer = &find(&rs, ModelPhase::KvTransfer)[0];
    let over_runs = transfer.reported["link_bytes_per_s_over_runs"];
    assert!((over_runs * 8.0 / 1e9 - 1.5959).abs() < 1e-3, "{over_runs}");
}

#[test]
fn seed_captures_are_time_series_with_their_caveats() {
    let d = load("results/imported/mac-ml-benchmark/distributed");
    assert_eq!(d.captures.len(), 4);
    let tp = d
        .captures
        .iter()
        .find(|c| c.source.file == "tp_traffic.json")
        .unwrap();
    assert_eq!(tp.samples.len(), 429);
    assert_eq!(tp.markers.len(), 128);
    assert_eq!(tp.interface.as_deref(), Some("bridge0"));
    assert_eq!(tp.machines.len(), 2);
    assert!(
        tp.caveats[0].contains("recorded nothing"),
        "{:?}",
        tp.caveats
    );
    let sample = d
        .captures
        .iter()
        .find(|c| c.source.file == "ep_traffic_sample.json")
        .unwrap();
    assert_eq!(sample.samples.len(), 500);
    assert!(
        sample
            .caveats
            .iter()
            .any(|c| c.contains("no capture metadata"))
    );
    assert!(sample.send_bytes > 0.0);
    // Summaries of captures that recorded nothing: not imported, and said so.
    assert!(matches!(
        status(&d, "tp_finetune_results.json"),
        FileStatus::NotImported { .. }
    ));
    assert!(
        warnings(&d, "tp_finetune_results.json")[0].contains("recorded nothing"),
        "{:?}",
        d.warnings
    );
    // Captures are never records.
    assert!(records(&d, "tp_traffic.json").is_empty());
    assert_eq!(d.failed_files().count(), 0);
}

#[test]
fn iperf3_captures_give_summed_and_per_stream_throughput_both_directions() {
    let d = load("tests/fixtures/iperf3");
    // The README beside the captures is not a result and no problem.
    assert_eq!(d.files.len(), 3, "{:?}", d.files);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.problem_count(), 0);

    let one = records(&d, "loopback_tcp_1stream.json");
    assert_eq!(one.len(), 1);
    let r = one[0];
    assert_eq!(r.framework, "iperf3");
    assert_eq!(r.machine.label, "vm");
    assert!(r.machine.id.starts_with("vm-"), "{}", r.machine.id);
    // The kernel silirep's own link measures, the client host sending to its peer.
    let KernelSpec::NetworkTransfer {
        direction,
        streams,
        message_bytes,
        peer,
        bytes,
        ..
    } = &r.spec
    else {
        panic!("{:?}", r.spec)
    };
    assert_eq!(
        (*direction, *streams, *message_bytes, peer.as_deref()),
        (LinkDirection::ToPeer, 1, 131072, Some("127.0.0.1"))
    );
    assert_eq!(r.spec.name(), "tcp_to_peer");
    // Three 1-second intervals; B is their mean bytes.
    assert_eq!(
        *bytes,
        ((2331639808u64 + 1874329600 + 1859911680) as f64 / 3.0).round() as u64
    );
    assert_eq!(r.timing.as_ref().unwrap().n(), 3);
    assert_eq!(r.reported["bytes_per_s_received"], 6065881088.0 / 3.000452);
    assert_eq!(r.reported["retransmits"], 48.0);
    // The median interval's rate is the middle interval's: 1874329600 B in 0.99967 s.
    let rate = r.bytes_per_s().unwrap();
    let middle = 1874329600.0 / 0.999_673_008_918_762_2;
    assert!((rate / middle - 1.0).abs() < 1e-6, "{rate} vs {middle}");

    let four = records(&d, "loopback_tcp_4streams.json");
    assert_eq!(four.len(), 5);
    assert_eq!(
        four.iter()
            .filter(|r| r.framework == "iperf3_per_stream")
            .count(),
        4
    );

    let reverse = records(&d, "loopback_tcp_reverse.json");
    assert!(matches!(
        reverse[0].spec,
        KernelSpec::NetworkTransfer {
            direction: LinkDirection::FromPeer,
            ..
        }
    ));
    assert_eq!(reverse[0].spec.name(), "tcp_from_peer");
}

#[test]
fn nccl_tests_logs_give_one_record_per_collective_size_and_placement() {
    let d = load("tests/fixtures/nccl-tests");
    let file = "two_gpus_all_reduce_all_gather.log";
    assert!(matches!(
        status(&d, file),
        FileStatus::Loaded { records: 12, .. }
    ));
    assert!(warnings(&d, file).is_empty(), "{:?}", warnings(&d, file));
    let rs = records(&d, file);
    let gather: Vec<&&Record> = rs
        .iter()
        .filter(|r| {
            matches!(
                r.spec,
                KernelSpec::Collective {
                    op: CollectiveOp::AllGather,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(gather.len(), 6);
    let big = gather
        .iter()
        .find(|r| r.framework == "nccl_tests" && r.spec.primary_size() == 268435456)
        .unwrap();
    assert_eq!(big.timing, Some(Timing::Single(1321.5e-6)));
    assert_eq!(big.spec.devices(), vec![0, 1]);
    assert_eq!(big.machine.label, "NVIDIA H200 (gpu-node-1)");
    // silirep's bus bandwidth from the printed time matches the printed busbw.
    let ours = big.spec.bus_bytes().unwrap() / 1321.5e-6;
    assert!((ours / big.reported["busbw_bytes_per_s"] - 1.0).abs() < 1e-3);
    assert_eq!(big.source.json_path, "line 32");

    // A log cut mid-row keeps its whole rows and says where it ends.
    let file = "truncated.log";
    assert!(matches!(
        status(&d, file),
        FileStatus::Loaded { records: 4, .. }
    ));
    let w = warnings(&d, file);
    assert!(
        w.iter()
            .any(|w| w.contains("line 14") && w.contains("truncated line")),
        "{w:?}"
    );
    assert!(w.iter().any(|w| w.contains("Avg bus bandwidth")), "{w:?}");
    // The README is not a log.
    assert_eq!(d.files.len(), 2);
}

#[test]
fn llama_bench_json_jsonl_and_csv_agree() {
    let d = load("tests/fixtures/llama-bench");
    let json = records(&d, "rtx4080_qwen2_7b.json");
    let jsonl = records(&d, "rtx4080_qwen2_7b.jsonl");
    let csv = records(&d, "rtx4080_qwen2_7b.csv");
    assert_eq!((json.len(), jsonl.len(), csv.len()), (2, 2, 2));
    assert_eq!(json[0].machine, csv[0].machine);
    assert_eq!(json[0].machine.label, "NVIDIA GeForce RTX 4080");
    assert!(json[0].machine.id.starts_with("nvidia-geforce-rtx-4080-"));
    let KernelSpec::Model {
        phase,
        seq_len,
        tokens,
        precision,
        params,
        ..
    } = &json[0].spec
    else {
        panic!()
    };
    assert_eq!(
        (*phase, *seq_len, *tokens, precision.as_str(), *params),
        (
            ModelPhase::Prefill,
            512,
            512,
            "Q4_K - Medium",
            Some(7615616512)
        )
    );
    assert_eq!(phase_of(json[1]), ModelPhase::Decode);
    // Repetitions are samples in JSON and JSONL; CSV has only the mean.
    assert_eq!(json[1].timing, jsonl[1].timing);
    assert_eq!(json[1].timing.as_ref().unwrap().n(), 5);
    assert_eq!(csv[1].timing, Some(Timing::Single(1.07676788)));
    assert_eq!(jsonl[0].source.json_path, "line 1");
    assert_eq!(csv[1].source.json_path, "line 3");
    assert_eq!(json[1].source.json_path, "$[1]");

    // The documentation's CSV rows have 41 fields under 42 columns: left out, line named.
    let w = warnings(&d, "docs_example_41_of_42_fields.csv");
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("line 2: 41 fields where the header has 42 columns"),
        "{w:?}"
    );
    assert_eq!(d.failed_files().count(), 0);
}

#[test]
fn hostile_inputs_are_named_failures_or_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let iperf =
        std::fs::read_to_string(repo("tests/fixtures/iperf3/loopback_tcp_1stream.json")).unwrap();
    write(p, "iperf_truncated.json", &iperf[..iperf.len() / 2]);
    write(
        p,
        "iperf_failed.json",
        r#"{"start": {"connecting_to": {"host": "10.0.0.2", "port": 5201}, "test_start": {}}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}"#,
    );
    write(
        p,
        "iperf_negative.json",
        &iperf.replace("\"seconds\":\t1.0004960298538208", "\"seconds\":\t-1.0"),
    );
    write(
        p,
        "llama_nan.json",
        r#"[{"n_prompt": 512, "n_gen": 0, "avg_ns": NaN, "model_type": "llama 7B Q4_0"},
            {"n_prompt": 0, "n_gen": 128, "avg_ns": -5, "model_type": "llama 7B Q4_0"},
            {"n_prompt": 0, "n_gen": 128, "avg_ns": 1e300, "model_type": "llama 7B Q4_0"}]"#,
    );
    write(
        p,
        "llama_bad_row.csv",
        "model_type,n_prompt,n_gen,avg_ns\n\"x\",\"1\",\"few\",\"2\"\n\"x\",\"1\",\"0\",\"2\"\n",
    );
    write(
        p,
        "llama_bad_number.jsonl",
        "{\"n_prompt\": 1, \"n_gen\": 0, \"avg_ns\": 5}\n{\"n_prompt\": \"many\", \"n_gen\": 0, \"avg_ns\": 5}\n",
    );
    let log = std::fs::read_to_string(repo(
        "tests/fixtures/nccl-tests/two_gpus_all_reduce_all_gather.log",
    ))
    .unwrap();
    write(
        p,
        "nccl_wrong_columns.log",
        &log.replace("algbw   busbw  #wrong", "algbw  #wrong"),
    );
    write(
        p,
        "empty_capture.json",
        r#"{"metadata": {"interface": "en0", "sample_rate_hz": 100}, "markers": [], "samples": []}"#,
    );
    // A README quoting nccl-tests output is documentation, not a log.
    write(
        p,
        "README.md",
        &format!("# How we ran it\n\n```\n{log}```\n"),
    );
    write(
        p,
        "notes.log",
        "ran all_reduce_perf yesterday, see the other file\n",
    );

    let d = ingest::load_dir(p).unwrap();
    let failed = |file: &str| match status(&d, file) {
        FileStatus::Failed { error } => error.clone(),
        other => panic!("{file}: expected a failure, got {other:?}"),
    };
    assert!(failed("iperf_truncated.json").contains("invalid JSON at line"));
    assert!(
        failed("iperf_failed.json")
            .contains("$.error: iperf3 reported a failed run: unable to connect")
    );
    assert!(
        failed("iperf_negative.json")
            .contains("$.intervals[0].sum.seconds: expected a non-negative"),
        "{:?}",
        status(&d, "iperf_negative.json")
    );
    // One bad test costs that test, named by line and field.
    assert_eq!(records(&d, "llama_bad_row.csv").len(), 1);
    let w = warnings(&d, "llama_bad_row.csv");
    assert!(
        w[0].contains("line 2, column n_gen: expected a number, found the string \"few\""),
        "{w:?}"
    );
    assert_eq!(records(&d, "llama_bad_number.jsonl").len(), 1);
    let w = warnings(&d, "llama_bad_number.jsonl");
    assert!(
        w[0].contains("line 2, member n_prompt: expected a number, found the string \"many\""),
        "{w:?}"
    );
    assert!(failed("nccl_wrong_columns.log").contains("line 10: expected the column header"));

    // Unusable times are records with an error, not numbers.
    let llama = records(&d, "llama_nan.json");
    assert_eq!(llama.len(), 3);
    assert!(
        llama[0].timing.is_none()
            && llama[0].error.as_deref() == Some("no time recorded (avg_ns is missing)")
    );
    assert!(llama[1].error.as_deref().unwrap().contains("-5"));
    assert!(llama[2].tokens_per_s().unwrap() > 0.0);
    assert!(warnings(&d, "llama_nan.json")[0].contains("non-finite token NaN"));

    assert!(warnings(&d, "empty_capture.json")[0].contains("no samples"));
    // Text nobody claims is not listed, so it is no --strict problem.
    assert!(
        d.files
            .iter()
            .all(|f| f.file != "README.md" && f.file != "notes.log")
    );
}

#[test]
fn report_reads_the_new_formats_into_machine_pages_and_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    for (from, to) in [
        (
            "tests/fixtures/nccl-tests/two_gpus_all_reduce_all_gather.log",
            "nccl/run.log",
        ),
        (
            "tests/fixtures/llama-bench/rtx4080_qwen2_7b.jsonl",
            "llama/bench.jsonl",
        ),
        (
            "tests/fixtures/iperf3/loopback_tcp_4streams.json",
            "net/p4.json",
        ),
    ] {
        let target = results.join(to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(repo(from), target).unwrap();
    }
    let out_dir = dir.path().join("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_silirep"))
        .args([
            "report",
            results.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
            "--strict",
        ])
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let csv = std::fs::read_to_string(out_dir.join("measurements.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for column in ["devices", "bus_bytes_per_s", "reported"] {
        assert!(header.split(',').any(|c| c == column), "{header}");
    }
    assert!(csv.contains("all_gather"), "{csv}");
    assert!(csv.contains("tcp_to_peer"));
    assert!(csv.contains("model_prefill"));
    let machines: Vec<String> = std::fs::read_dir(out_dir.join("machines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        machines.iter().any(|m| m.starts_with("nvidia-h200-")),
        "{machines:?}"
    );
    assert!(
        machines
            .iter()
            .any(|m| m.starts_with("nvidia-geforce-rtx-4080-")),
        "{machines:?}"
    );
    // The iperf3 run is on the network chart as its own curve, at its write size.
    let pages: String = walk(&out_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(pages.contains("(iperf3)"), "no iperf3 curve in the report");
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Real logs from the two-H200 machine: each collective's two sizes, out of place and in
/// place, with the time nccl-tests printed and its bus bandwidth reproduced from that time.
#[test]
fn real_nccl_tests_logs_from_two_h200s_are_read_and_their_busbw_reproduced() {
    let d = load("tests/fixtures/nccl-tests-h200-x2");
    for (file, op) in [
        ("all_reduce.log", CollectiveOp::AllReduce),
        ("all_gather.log", CollectiveOp::AllGather),
        ("alltoall.log", CollectiveOp::AllToAll),
    ] {
        assert!(
            matches!(status(&d, file), FileStatus::Loaded { records: 4, .. }),
            "{file}: {:?}",
            status(&d, file)
        );
        assert!(
            warnings(&d, file).is_empty(),
            "{file}: {:?}",
            warnings(&d, file)
        );
        for r in records(&d, file) {
            assert!(matches!(r.spec, KernelSpec::Collective { op: o, .. } if o == op));
            assert_eq!(r.spec.devices(), vec![0, 1]);
            let Some(Timing::Single(t)) = r.timing else {
                panic!("{file}: {:?}", r.timing)
            };
            let ours = r.spec.bus_bytes().unwrap() / t;
            let printed = r.reported["busbw_bytes_per_s"];
            // nccl-tests prints busbw with two decimals in GB/s.
            assert!(
                (ours / printed - 1.0).abs() < 1e-3,
                "{file}: {ours} vs {printed}"
            );
        }
    }
    // all_reduce at 4 GiB out of place: 12475.5 µs, 344.27 GB/s bus bandwidth.
    let big = records(&d, "all_reduce.log")
        .into_iter()
        .find(|r| r.framework == "nccl_tests" && r.spec.primary_size() == 4294967296)
        .unwrap();
    assert_eq!(big.timing, Some(Timing::Single(12475.5e-6)));
}

/// Real iperf3 files from the lent two-H200 machine's host: both directions, one and four
/// streams, each read with its direction and stream count, and the summed record's rate is
/// the run's own receiver-side throughput (total bytes over total time, within the spread of
/// its five 1-second intervals).
#[test]
fn real_iperf3_files_from_the_h200_host_are_read_in_both_directions() {
    let d = load("tests/fixtures/iperf3-h200-host");
    assert_eq!(d.problem_count(), 0, "{:?} {:?}", d.files, d.warnings);
    for (file, direction, streams, receiver_gb_per_s) in [
        ("tcp_1stream.json", LinkDirection::ToPeer, 1, 6.1416),
        ("tcp_reverse.json", LinkDirection::FromPeer, 1, 6.0043),
        ("tcp_4streams.json", LinkDirection::ToPeer, 4, 6.9829),
        (
            "tcp_4streams_reverse.json",
            LinkDirection::FromPeer,
            4,
            7.2020,
        ),
    ] {
        let summed: Vec<&Record> = records(&d, file)
            .into_iter()
            .filter(|r| matches!(r.spec, KernelSpec::NetworkTransfer { streams: s, direction: dir, .. } if s == streams && dir == direction))
            .collect();
        assert!(!summed.is_empty(), "{file}: {:?}", records(&d, file));
        let rate = summed[0].bytes_per_s().unwrap() / 1e9;
        assert!(
            (rate / receiver_gb_per_s - 1.0).abs() < 0.05,
            "{file}: {rate} GB/s vs iperf3's {receiver_gb_per_s}"
        );
    }
}
