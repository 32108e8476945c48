//! nccl-tests output (`all_reduce_perf`, `all_gather_perf`, ... as printed on stdout; several
//! runs may be concatenated in one log).
//!
//! The layout is nccl-tests' `src/util.cu`: a header (`# nccl-tests version ...`,
//! `# Collective test starting: <binary>` in versions that print it, `# nThread ... iters: N`,
//! `# Using devices` and one `#  Rank r Group g Pid p on <host> device d [<pci>] <GPU>` line
//! per rank), a column header (`size count type redop root`, then `time algbw busbw #wrong`
//! out of place and the same in place, with four per-iteration columns each under `-I 1`),
//! one row per size, and a footer (`# Out of bounds values`, `# Avg bus bandwidth`).
//!
//! The rows do not name their collective (all-reduce, reduce-scatter and send/recv rows look
//! alike), so a section must: by its `Collective test starting` line, or, in older logs, by
//! the command line (`./build/all_reduce_perf -b 8 ...`) written into the log before it.
//!
//! One record per (collective, size, dtype, placement): out-of-place rows are framework
//! `nccl_tests`, in-place rows `nccl_tests_in_place`, so the two never mix in a comparison.
//! The time is nccl-tests' average over its iterations, in µs, kept as a single value; its
//! algorithm and bus bandwidths are kept in `reported` (`algbw_bytes_per_s`,
//! `busbw_bytes_per_s`) and checked against silirep's formulas (S / t and S·f / t with
//! nccl-tests' factor f for the number of ranks). A row with wrong elements reports no time.

use super::record::{Record, Timing, Verification};
use super::text::tool_machine;
use super::{ImportError, Imported, MachineInfo, TextImporter, TextView};
use silirep_core::{CollectiveOp, Dtype, KernelSpec};
use std::collections::BTreeMap;

pub struct NcclTests;

/// Relative difference tolerated between a printed bandwidth and silirep's from the printed
/// time: both are rounded to two decimals or three significant digits.
const PRINT_TOLERANCE: f64 = 0.02;

impl TextImporter for NcclTests {
    fn format_name(&self) -> &'static str {
        "nccl-tests log"
    }

    fn recognises(&self, file: &TextView) -> bool {
        file.text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("# nccl-tests version")
                || (l.starts_with('#') && l.contains("algbw") && l.contains("busbw"))
        })
    }

    fn import(&self, file: &TextView, out: &mut Imported) -> Result<(), ImportError> {
        let mut sections = Vec::new();
        let mut current = Section::default();
        for (index, raw) in file.text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                let rest = rest.trim();
                let starts_section = rest.starts_with("nccl-tests version")
                    || rest.starts_with("Collective test starting:")
                    || rest.starts_with("nThread");
                if starts_section && current.has_table() {
                    sections.push(std::mem::take(&mut current));
                }
                if current.first_line == 0 {
                    current.first_line = line_no;
                }
                if let Some(name) = rest.strip_prefix("Collective test starting:") {
                    current.program = Some(name.trim().to_string());
                } else if rest.starts_with("nThread") {
                    current.iterations = after(rest, "iters:");
                } else if rest.starts_with("Rank") {
                    current
                        .ranks
                        .push(parse_rank(rest).ok_or_else(|| ImportError::Invalid {
                        path: format!("line {line_no}"),
                        message: format!(
                            "expected a device line `#  Rank r Group g Pid p on <host> device d \
                             [<pci>] <GPU>`, found {rest:?}"
                        ),
                    })?);
                } else if rest.ends_with("...") && !current.ranks.is_empty() {
                    current.devices_truncated = true;
                } else if is_column_header(rest) {
                    current.columns = Some(Columns::from_header(rest, line_no)?);
                } else if let Some(avg) = rest.strip_prefix("Avg bus bandwidth") {
                    current.avg_busbw = avg
                        .trim_start_matches([' ', ':'])
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<f64>().ok())
                        .map(|v| (v, line_no));
                    current.complete = true;
                }
                continue;
            }
            // A command line (`./build/all_reduce_perf -b 8 ...`) names the section after it.
            if let Some(program) = program_in_command(line) {
                if current.has_table() {
                    sections.push(std::mem::take(&mut current));
                }
                if current.first_line == 0 {
                    current.first_line = line_no;
                }
                current.program = Some(program);
                continue;
            }
            let starts_with_number = line
                .split_whitespace()
                .next()
                .is_some_and(|t| t.parse::<u64>().is_ok());
            if !starts_with_number {
                continue;
            }
            let Some(columns) = &current.columns else {
                out.warn_at(
                    file.rel_path,
                    &format!("line {line_no}"),
                    "a result row before any column header: left out",
                );
                continue;
            };
            match columns.parse_row(line) {
                Ok(row) => current.rows.push((line_no, row)),
                Err(message) => out.warn_at(
                    file.rel_path,
                    &format!("line {line_no}"),
                    format!("{message}: row left out"),
                ),
            }
        }
        if current.has_table() || !current.ranks.is_empty() {
            sections.push(current);
        }
        if sections.iter().all(|s| s.rows.is_empty()) {
            return Err(ImportError::Invalid {
                path: "line 1".into(),
                message: "expected nccl-tests result rows under a `size count type redop root` \
                          header, found none"
                    .into(),
            });
        }
        for section in &sections {
            import_section(file, section, out)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Section {
    first_line: usize,
    program: Option<String>,
    iterations: Option<u64>,
    ranks: Vec<Rank>,
    devices_truncated: bool,
    columns: Option<Columns>,
    rows: Vec<(usize, Row)>,
    avg_busbw: Option<(f64, usize)>,
    complete: bool,
}

impl Section {
    fn has_table(&self) -> bool {
        self.columns.is_some()
    }
}

struct Rank {
    host: String,
    device: u32,
    gpu: String,
}

/// `Rank  0 Group  0 Pid  12345 on   hostname device  0 [0x0000:1b:00.0] NVIDIA H100 80GB HBM3`
/// (older versions print the PCI address as `[0x1b]`).
fn parse_rank(rest: &str) -> Option<Rank> {
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let on = tokens.iter().position(|t| *t == "on")?;
    let device_at = tokens.iter().position(|t| *t == "device")?;
    let host = tokens.get(on + 1)?.to_string();
    let device = tokens.get(device_at + 1)?.parse().ok()?;
    let mut rest_tokens = tokens[device_at + 2..].iter().peekable();
    if rest_tokens.peek().is_some_and(|t| t.starts_with('[')) {
        rest_tokens.next();
    }
    let gpu = rest_tokens.copied().collect::<Vec<_>>().join(" ");
    (!gpu.is_empty()).then_some(Rank { host, device, gpu })
}

/// `iters: 20` → 20.
fn after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    text[at..].split_whitespace().next()?.parse().ok()
}

fn is_column_header(rest: &str) -> bool {
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    // Recognised loosely, validated strictly (`Columns::from_header`), so a header with wrong
    // columns is an error naming its line rather than a header nobody saw.
    tokens.first() == Some(&"size") && tokens.get(1) == Some(&"count")
}

/// `all_reduce_perf`, `./build/alltoall_perf_mpi -b 8` → the binary's name without `_mpi`.
fn program_in_command(line: &str) -> Option<String> {
    line.split_whitespace().find_map(|token| {
        let name = token.rsplit('/').next()?;
        let name = name.strip_suffix("_mpi").unwrap_or(name);
        (name.ends_with("_perf") && name.len() > 5).then(|| name.to_string())
    })
}

fn collective(program: &str) -> Option<CollectiveOp> {
    Some(match program.strip_suffix("_mpi").unwrap_or(program) {
        "all_reduce_perf" => CollectiveOp::AllReduce,
        "all_gather_perf" => CollectiveOp::AllGather,
        "reduce_scatter_perf" => CollectiveOp::ReduceScatter,
        "alltoall_perf" => CollectiveOp::AllToAll,
        "broadcast_perf" => CollectiveOp::Broadcast,
        "sendrecv_perf" => CollectiveOp::SendRecv,
        _ => return None,
    })
}

/// nccl-tests' type names (`test_typenames` in `src/common.cu`) that silirep has a dtype for.
fn dtype(type_name: &str) -> Option<Dtype> {
    match type_name {
        "f8e4m3" => Some(Dtype::Fp8E4m3),
        "half" | "float" | "double" | "bfloat16" | "int8" => Dtype::parse(type_name),
        _ => None,
    }
}

/// Where the out-of-place and in-place `time algbw busbw #wrong` groups start in a row.
struct Columns {
    out_of_place: usize,
    in_place: usize,
    /// Tokens a row must have at least.
    min_tokens: usize,
    cputime: bool,
}

impl Columns {
    fn from_header(rest: &str, line_no: usize) -> Result<Columns, ImportError> {
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let time_at: Vec<usize> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(**t, "time" | "cputime"))
            .map(|(i, _)| i)
            .collect();
        let expected_lead = ["size", "count", "type", "redop", "root"];
        let lead_ok = tokens.len() >= 5 && tokens[..5] == expected_lead;
        let group_ok =
            |at: usize| tokens.get(at + 1..at + 4) == Some(&["algbw", "busbw", "#wrong"][..]);
        if !lead_ok || time_at.len() != 2 || !time_at.iter().all(|&at| group_ok(at)) {
            return Err(ImportError::Invalid {
                path: format!("line {line_no}"),
                message: format!(
                    "expected the column header `size count type redop root time algbw busbw \
                     #wrong time algbw busbw #wrong`, found {rest:?}"
                ),
            });
        }
        Ok(Columns {
            out_of_place: time_at[0],
            in_place: time_at[1],
            min_tokens: time_at[1] + 4,
            cputime: tokens[time_at[0]] == "cputime",
        })
    }

    fn parse_row(&self, line: &str) -> Result<Row, String> {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() < self.min_tokens {
            return Err(format!(
                "{} columns where the header has {} (truncated line?)",
                tokens.len(),
                self.min_tokens
            ));
        }
        let bytes = tokens[0]
            .parse::<u64>()
            .map_err(|_| format!("size {:?} is not a byte count", tokens[0]))?;
        let result = |at: usize| -> Result<Placement, String> {
            let number = |i: usize, what: &str| -> Result<f64, String> {
                let text = tokens[i];
                let v: f64 = text
                    .parse()
                    .map_err(|_| format!("{what} {text:?} is not a number"))?;
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "{what} {text:?} is not a finite, non-negative number"
                    ));
                }
                Ok(v)
            };
            let wrong = match tokens[at + 3] {
                "N/A" => None,
                text => Some(
                    text.parse::<f64>()
                        .map_err(|_| format!("#wrong {text:?} is neither a count nor N/A"))?,
                ),
            };
            Ok(Placement {
                time_us: number(at, "time")?,
                algbw_gb_s: number(at + 1, "algbw")?,
                busbw_gb_s: number(at + 2, "busbw")?,
                wrong,
            })
        };
        Ok(Row {
            bytes,
            type_name: tokens[2].to_string(),
            out_of_place: result(self.out_of_place)?,
            in_place: result(self.in_place)?,
        })
    }
}

struct Row {
    bytes: u64,
    type_name: String,
    out_of_place: Placement,
    in_place: Placement,
}

struct Placement {
    time_us: f64,
    algbw_gb_s: f64,
    busbw_gb_s: f64,
    /// Wrong elements; `None` when validation was off (`N/A`).
    wrong: Option<f64>,
}

fn import_section(
    file: &TextView,
    section: &Section,
    out: &mut Imported,
) -> Result<(), ImportError> {
    let at = format!("line {}", section.first_line.max(1));
    if section.rows.is_empty() {
        out.warn_at(file.rel_path, &at, "a section with no result rows");
        return Ok(());
    }
    let Some(program) = &section.program else {
        return Err(ImportError::Invalid {
            path: at,
            message: "cannot tell which collective this section measured: nccl-tests 2.16.7 and \
                      later print `# Collective test starting: <binary>`; for older logs, keep \
                      the command line (e.g. `./build/all_reduce_perf -b 8 -e 128M -g 2`) in \
                      the log before its output"
                .into(),
        });
    };
    let Some(op) = collective(program) else {
        out.warn_at(
            file.rel_path,
            &at,
            format!("{program}: silirep has no kernel for this collective; section left out"),
        );
        return Ok(());
    };
    if section.ranks.is_empty() {
        return Err(ImportError::Invalid {
            path: at,
            message: format!(
                "{program}: expected `#  Rank r ... device d [...] <GPU>` lines under \
                 `# Using devices`, found none: the number of ranks (and so the bus bandwidth) \
                 is unknown"
            ),
        });
    }
    if section.devices_truncated {
        out.warn_at(
            file.rel_path,
            &at,
            "the device list is cut short (`...`): ranks beyond it are not counted",
        );
    }
    if !section.complete {
        out.warn_at(
            file.rel_path,
            &format!("line {}", section.rows.last().map(|r| r.0).unwrap_or(1)),
            format!(
                "{program}: the log ends before the section's `# Avg bus bandwidth` footer \
                 (truncated, or the run stopped); the rows before are kept"
            ),
        );
    }
    let mut hosts: Vec<&str> = section.ranks.iter().map(|r| r.host.as_str()).collect();
    hosts.dedup();
    let gpu = section.ranks[0].gpu.clone();
    let devices: Vec<u32> = section.ranks.iter().map(|r| r.device).collect();
    let devices_text = silirep_core::kernels::devices_label(&devices);
    let machine = if file.folder_described {
        file.folder_machine.clone()
    } else {
        tool_machine(
            &format!("{gpu} ({})", hosts[0]),
            hosts[0],
            "",
            Some(&gpu),
            Some(&devices_text),
        )
    };
    if !file.folder_described {
        out.machines.push((
            machine.clone(),
            MachineInfo {
                label: machine.label.clone(),
                accelerator: Some(gpu.clone()),
                described_by: vec![file.rel_path.to_string()],
                ..Default::default()
            },
        ));
    }
    let ranks = section.ranks.len() as u64;
    let factor = op.bus_bandwidth_factor(ranks);
    let mut unsupported_types: BTreeMap<&str, usize> = BTreeMap::new();
    let mut busbw_sum = 0.0;
    let mut busbw_n = 0usize;
    for (line_no, row) in &section.rows {
        let location = format!("line {line_no}");
        for (placement, framework, label) in [
            (&row.out_of_place, "nccl_tests", "out-of-place"),
            (&row.in_place, "nccl_tests_in_place", "in-place"),
        ] {
            busbw_sum += placement.busbw_gb_s;
            busbw_n += 1;
            let Some(dtype) = dtype(&row.type_name) else {
                *unsupported_types.entry(&row.type_name).or_default() += 1;
                continue;
            };
            let spec = KernelSpec::Collective {
                op,
                bytes: row.bytes,
                dtype,
                devices: devices.clone(),
            };
            let time_s = placement.time_us / 1e6;
            let (timing, verification, error) = match placement.wrong {
                Some(w) if w > 0.0 => (
                    None,
                    Verification::Failed,
                    Some(format!("nccl-tests counted {w} wrong elements ({label})")),
                ),
                _ if time_s <= 0.0 => (
                    None,
                    Verification::NotReported,
                    Some("time is 0".to_string()),
                ),
                Some(_) => (Some(Timing::Single(time_s)), Verification::Passed, None),
                // `N/A`: validation was off (-c 0), so nothing was checked.
                None => (Some(Timing::Single(time_s)), Verification::NotRun, None),
            };
            let mut record = Record {
                machine: machine.clone(),
                framework: framework.into(),
                spec,
                timing,
                verification,
                error,
                run_id: None,
                source: file.provenance(&location),
                notes: vec![format!(
                    "{program} {label}: mean time over {} iterations as nccl-tests prints it \
                     (per-iteration times are not in the log); {ranks} rank(s) on {}",
                    section
                        .iterations
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "its".into()),
                    hosts.join(", ")
                )],
                clock: None,
                reported: BTreeMap::new(),
            };
            if section.columns.as_ref().is_some_and(|c| c.cputime) {
                record.notes.push(
                    "the log's times are host CPU times (`cputime`, nccl-tests -C 1), not GPU times"
                        .into(),
                );
            }
            if hosts.len() > 1 {
                record
                    .notes
                    .push(format!("spans {} hosts: {}", hosts.len(), hosts.join(", ")));
            }
            record
                .reported
                .insert("algbw_bytes_per_s".into(), placement.algbw_gb_s * 1e9);
            record
                .reported
                .insert("busbw_bytes_per_s".into(), placement.busbw_gb_s * 1e9);
            if time_s > 0.0 {
                check_bandwidths(
                    file, out, &location, label, row.bytes, time_s, factor, placement,
                );
            }
            if section.ranks.iter().any(|r| r.gpu != gpu) {
                record.notes.push(
                    "ranks run on different GPU models; the machine is named after rank 0's".into(),
                );
            }
            out.records.push(record);
        }
    }
    for (type_name, rows) in unsupported_types {
        out.warn_at(
            file.rel_path,
            &at,
            format!("{program}: {rows} result(s) in type {type_name:?}, which silirep has no dtype for: left out"),
        );
    }
    if let Some((stated, line_no)) = section.avg_busbw
        && busbw_n > 0
    {
        let mean = busbw_sum / busbw_n as f64;
        if (stated - mean).abs() > 0.01 + PRINT_TOLERANCE * mean {
            out.warn_at(
                file.rel_path,
                &format!("line {line_no}"),
                format!(
                    "the average bus bandwidth {stated} GB/s is not the mean of the section's \
                     {busbw_n} printed busbw values ({mean:.3} GB/s): rows are missing from the log"
                ),
            );
        }
    }
    Ok(())
}

/// The printed algbw must be S / t, and busbw / algbw nccl-tests' factor for the ranks seen;
/// otherwise a row was edited or the rank count is wrong.
#[allow(clippy::too_many_arguments)]
fn check_bandwidths(
    file: &TextView,
    out: &mut Imported,
    location: &str,
    label: &str,
    bytes: u64,
    time_s: f64,
    factor: f64,
    placement: &Placement,
) {
    let algbw = bytes as f64 / time_s / 1e9;
    // Below 1 GB/s two printed decimals are too coarse to compare.
    if placement.algbw_gb_s >= 1.0 && (placement.algbw_gb_s - algbw).abs() > PRINT_TOLERANCE * algbw
    {
        out.warn_at(
            file.rel_path,
            location,
            format!(
                "{label}: algbw {} GB/s is not size / time ({bytes} B / {:.2} µs = {algbw:.2} GB/s)",
                placement.algbw_gb_s,
                time_s * 1e6
            ),
        );
    }
    if placement.algbw_gb_s >= 1.0 {
        let ratio = placement.busbw_gb_s / placement.algbw_gb_s;
        if (ratio - factor).abs() > PRINT_TOLERANCE * factor.max(0.01) {
            out.warn_at(
                file.rel_path,
                location,
                format!(
                    "{label}: busbw / algbw is {ratio:.3}, nccl-tests' factor for the ranks \
                     listed is {factor:.3}: the device list does not match the run"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::record::MachineKey;

    const LOG: &str = "\
# nccl-tests version 2.17.6 nccl-headers=22807 nccl-library=22807
# Collective test starting: all_reduce_perf
# nThread 1 nGpus 2 minBytes 8 maxBytes 134217728 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0 unalign: 0
#
# Using devices
#  Rank  0 Group  0 Pid   4242 on      node1 device  0 [0000:19:00] NVIDIA H200
#  Rank  1 Group  0 Pid   4242 on      node1 device  1 [0000:3b:00] NVIDIA H200
#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
     1048576        262144     float     sum      -1    20.00   52.43   52.43      0    21.00   49.93   49.93      0
   134217728      33554432     float     sum      -1   1000.0  134.22  134.22      0   1001.0  134.08  134.08      0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 92.665
#
# Collective test concluded: all_reduce_perf
";

    fn run(text: &str) -> (Imported, Result<(), ImportError>) {
        let key = MachineKey {
            id: "folder".into(),
            label: "folder".into(),
        };
        let view = TextView {
            rel_path: "nccl.log",
            file_name: "nccl.log",
            text,
            folder_machine: &key,
            folder_described: false,
        };
        assert!(NcclTests.recognises(&view));
        let mut out = Imported::default();
        let result = NcclTests.import(&view, &mut out);
        (out, result)
    }

    #[test]
    fn one_record_per_size_and_placement_with_devices_and_bandwidths() {
        let (out, result) = run(LOG);
        result.unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(out.records.len(), 4);
        let r = &out.records[0];
        assert_eq!(r.framework, "nccl_tests");
        assert_eq!(out.records[1].framework, "nccl_tests_in_place");
        assert_eq!(
            r.spec,
            KernelSpec::Collective {
                op: CollectiveOp::AllReduce,
                bytes: 1048576,
                dtype: Dtype::F32,
                devices: vec![0, 1]
            }
        );
        assert_eq!(r.timing, Some(Timing::Single(20e-6)));
        assert_eq!(r.reported["busbw_bytes_per_s"], 52.43e9);
        assert_eq!(r.machine.label, "NVIDIA H200 (node1)");
        assert!(r.machine.id.starts_with("nvidia-h200-"));
        assert_eq!(r.source.json_path, "line 12");
        assert_eq!(r.verification, Verification::Passed);
    }

    #[test]
    fn a_section_without_its_collective_is_an_error_and_a_truncated_one_warns() {
        let anonymous = LOG.replace("# Collective test starting: all_reduce_perf\n", "");
        let (_, result) = run(&anonymous);
        let err = result.unwrap_err().to_string();
        assert!(err.contains("cannot tell which collective"), "{err}");
        // The command line names it in older logs.
        let (out, result) = run(&format!(
            "$ ./build/all_reduce_perf -b 1M -e 128M -g 2\n{anonymous}"
        ));
        result.unwrap();
        assert_eq!(out.records.len(), 4);

        let cut = &LOG[..LOG.find("   134217728").unwrap() + 60];
        let (out, result) = run(cut);
        result.unwrap();
        assert_eq!(out.records.len(), 2);
        let messages: Vec<String> = out.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("line 13") && m.contains("truncated line")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("Avg bus bandwidth")),
            "{messages:?}"
        );
    }

    #[test]
    fn per_iteration_columns_are_skipped_over() {
        let log = "\
# Collective test starting: sendrecv_perf
# nThread 1 nGpus 2 minBytes 8 maxBytes 8 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0 unalign: 0
# Using devices
#  Rank  0 Group  0 Pid   1 on h device  0 [0000:19:00] NVIDIA H200
#  Rank  1 Group  0 Pid   1 on h device  1 [0000:3b:00] NVIDIA H200
#       size         count      type   redop    root     time   algbw   busbw #wrong    i_min    i_max    i_p99    i_cv%     time   algbw   busbw #wrong    i_min    i_max    i_p99    i_cv%
     8000000       2000000     float     sum      -1    80.00  100.00  100.00      0    79.00    81.00    81.00     0.50    40.00  200.00  200.00      0    39.00    41.00    41.00     0.40
# Avg bus bandwidth    : 150
";
        let (out, result) = run(log);
        result.unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(out.records[0].timing, Some(Timing::Single(80e-6)));
        assert_eq!(out.records[1].timing, Some(Timing::Single(40e-6)));
        assert!(matches!(
            out.records[0].spec,
            KernelSpec::Collective {
                op: CollectiveOp::SendRecv,
                ..
            }
        ));
    }

    #[test]
    fn hostile_numbers_are_warnings_not_panics() {
        let nan = LOG.replace("   20.00   52.43", "     nan   52.43");
        let (out, result) = run(&nan);
        result.unwrap();
        assert_eq!(out.records.len(), 2);
        let messages: Vec<String> = out.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            messages[0].contains("nccl.log: line 12: time \"nan\""),
            "{messages:?}"
        );
        // The footer's average still counts the row the log lost.
        assert!(messages[1].contains("not the mean"), "{messages:?}");

        let negative = LOG.replace("1001.0  134.08", "-1001.0 134.08");
        let (out, result) = run(&negative);
        result.unwrap();
        assert_eq!(out.records.len(), 2);
        assert!(
            out.warnings[0]
                .to_string()
                .contains("line 13: time \"-1001.0\"")
        );

        let huge = LOG.replace("   20.00   52.43", " 1e308   52.43");
        let (out, result) = run(&huge);
        result.unwrap();
        assert!(!out.warnings.is_empty());

        let wrong_header = LOG.replace("busbw #wrong     time", "busbw     time");
        let (_, result) = run(&wrong_header);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("expected the column header")
        );

        let wrong = LOG.replace("134.22      0", "134.22      3");
        let (out, _) = run(&wrong);
        assert_eq!(out.records[2].verification, Verification::Failed);
        assert!(out.records[2].timing.is_none());
    }
}
