//! The tidy table: one row per (machine, framework, kernel, parameters) measurement, with
//! statistics columns and provenance. Multi-device records add the devices involved and the
//! bus bandwidth (nccl-tests' convention); `reported` lists the values the source itself
//! stated (`key=value` pairs, sorted), kept beside silirep's own figures for cross-checks. Rows keep load order (sorted paths, then document
//! order), so the table — and the CSV written from it — is the same on every machine.

use super::record::{Record, Timing};
use polars::prelude::*;

/// Column names, in order. Times are seconds per iteration; rates are per second.
pub const COLUMNS: &[&str] = &[
    "machine_id",
    "machine_label",
    "framework",
    "family",
    "kernel",
    "dtype",
    "params",
    "devices",
    "primary_size",
    "n",
    "center_method",
    "center_s",
    "mean_s",
    "std_s",
    "min_s",
    "max_s",
    "flops",
    "bytes",
    "flop_per_s",
    "bytes_per_s",
    "tokens_per_s",
    "bus_bytes_per_s",
    "verification",
    "error",
    "clock",
    "run_id",
    "reported",
    "source_file",
    "json_path",
];

pub fn build(records: &[Record]) -> PolarsResult<DataFrame> {
    let text = |f: &dyn Fn(&Record) -> String| -> Vec<String> { records.iter().map(f).collect() };
    let opt_text = |f: &dyn Fn(&Record) -> Option<String>| -> Vec<Option<String>> {
        records.iter().map(f).collect()
    };
    let num = |f: &dyn Fn(&Record) -> Option<f64>| -> Vec<Option<f64>> {
        records.iter().map(f).collect()
    };
    let timing = |r: &Record| r.timing.clone();
    let columns: Vec<Column> = vec![
        Column::new("machine_id".into(), text(&|r| r.machine.id.clone())),
        Column::new("machine_label".into(), text(&|r| r.machine.label.clone())),
        Column::new("framework".into(), text(&|r| r.framework.clone())),
        Column::new("family".into(), text(&|r| r.spec.family().to_string())),
        Column::new("kernel".into(), text(&|r| r.spec.name())),
        Column::new("dtype".into(), text(&|r| r.spec.precision_label())),
        Column::new("params".into(), text(&|r| r.spec.params_label())),
        Column::new(
            "devices".into(),
            opt_text(&|r| {
                let devices = r.spec.devices();
                (!devices.is_empty()).then(|| silirep_core::kernels::devices_label(&devices))
            }),
        ),
        Column::new(
            "primary_size".into(),
            records
                .iter()
                .map(|r| r.spec.primary_size())
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "n".into(),
            records
                .iter()
                .map(|r| timing(r).map(|t| t.n()).unwrap_or(0))
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "center_method".into(),
            opt_text(&|r| r.timing.as_ref().map(|t| t.center_method().to_string())),
        ),
        Column::new(
            "center_s".into(),
            num(&|r| r.timing.as_ref().map(Timing::center_s)),
        ),
        Column::new("mean_s".into(), num(&|r| r.timing.as_ref().map(mean_s))),
        Column::new("std_s".into(), num(&|r| r.timing.as_ref().and_then(std_s))),
        Column::new(
            "min_s".into(),
            num(&|r| r.timing.as_ref().and_then(|t| extreme(t, f64::min))),
        ),
        Column::new(
            "max_s".into(),
            num(&|r| r.timing.as_ref().and_then(|t| extreme(t, f64::max))),
        ),
        Column::new("flops".into(), num(&|r| r.spec.flops())),
        Column::new("bytes".into(), num(&|r| r.spec.bytes())),
        Column::new("flop_per_s".into(), num(&|r| r.flop_per_s())),
        Column::new("bytes_per_s".into(), num(&|r| r.bytes_per_s())),
        Column::new("tokens_per_s".into(), num(&|r| r.tokens_per_s())),
        Column::new("bus_bytes_per_s".into(), num(&|r| bus_bytes_per_s(r))),
        Column::new(
            "verification".into(),
            text(&|r| r.verification.name().to_string()),
        ),
        Column::new("error".into(), opt_text(&|r| r.error.clone())),
        Column::new("clock".into(), opt_text(&|r| r.clock.clone())),
        Column::new("run_id".into(), opt_text(&|r| r.run_id.clone())),
        Column::new("reported".into(), opt_text(&|r| reported_text(r))),
        Column::new("source_file".into(), text(&|r| r.source.file.clone())),
        Column::new("json_path".into(), text(&|r| r.source.json_path.clone())),
    ];
    DataFrame::new(records.len(), columns)
}

/// Bus bandwidth of a collective (S·f / t) or a copy; only for multi-device records.
fn bus_bytes_per_s(r: &Record) -> Option<f64> {
    let t = r.timing.as_ref()?.center_s();
    Some(r.spec.bus_bytes()? / t)
}

/// `key=value;key=value` in key order, values in Rust's shortest round-trip form, so the
/// text is the same on every machine.
fn reported_text(r: &Record) -> Option<String> {
    (!r.reported.is_empty()).then(|| {
        r.reported
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    })
}

fn mean_s(t: &Timing) -> f64 {
    match t {
        Timing::Samples(s) => s.iter().sum::<f64>() / s.len() as f64,
        Timing::Summary { mean_s, .. } => *mean_s,
        Timing::Single(v) => *v,
    }
}

/// Sample standard deviation (n − 1); `None` for n < 2.
fn std_s(t: &Timing) -> Option<f64> {
    match t {
        Timing::Samples(s) if s.len() >= 2 => {
            let mean = mean_s(t);
            let ss: f64 = s.iter().map(|x| (x - mean).powi(2)).sum();
            Some((ss / (s.len() - 1) as f64).sqrt())
        }
        Timing::Summary { std_s, .. } => Some(*std_s),
        _ => None,
    }
}

fn extreme(t: &Timing, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match t {
        Timing::Samples(s) => s.iter().copied().reduce(pick),
        Timing::Single(v) => Some(*v),
        Timing::Summary { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::record::{MachineKey, Provenance};
    use silirep_core::{Dtype, KernelSpec};

    fn record(timing: Option<Timing>) -> Record {
        Record {
            machine: MachineKey {
                id: "m".into(),
                label: "M".into(),
            },
            framework: "cpu".into(),
            spec: KernelSpec::Gemm {
                m: 1000,
                n: 1000,
                k: 1000,
                dtype: Dtype::F32,
            },
            timing,
            verification: crate::ingest::record::Verification::Passed,
            error: None,
            run_id: None,
            source: Provenance {
                file: "a.json".into(),
                json_path: "$.measurements[0]".into(),
            },
            notes: vec![],
            clock: None,
            reported: Default::default(),
        }
    }

    #[test]
    fn one_row_per_record_with_rates() {
        let records = vec![
            record(Some(Timing::Samples(vec![1.0, 2.0, 3.0]))),
            record(Some(Timing::Summary {
                mean_s: 2.0,
                std_s: 0.5,
                n: 10,
            })),
            record(None),
        ];
        let df = build(&records).unwrap();
        assert_eq!(df.height(), 3);
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, COLUMNS);
        let center = df.column("center_s").unwrap().f64().unwrap();
        assert_eq!(center.get(0), Some(2.0));
        assert_eq!(center.get(2), None);
        let rate = df.column("flop_per_s").unwrap().f64().unwrap();
        assert_eq!(rate.get(0), Some(1e9));
        let std = df.column("std_s").unwrap().f64().unwrap();
        assert_eq!(std.get(0), Some(1.0));
    }
}
