//! pytorch_vs_mlx_detailed.json: {"pytorch_mps": [{size, dtype, avg_ms, std_ms?, samples?}]}

use super::*;

pub(super) struct GemmComparison;

impl Importer for GemmComparison {
    fn format_name(&self) -> &'static str {
        "mac-ml-benchmark GEMM comparison"
    }

    fn recognises(&self, file: &FileView) -> bool {
        let Some(map) = file.doc.as_object() else {
            return false;
        };
        !map.is_empty()
            && map.values().all(|v| {
                v.as_array().is_some_and(|items| {
                    items
                        .iter()
                        .all(|i| i.get("avg_ms").is_some() && i.get("size").is_some())
                })
            })
    }

    fn import(&self, file: &FileView, out: &mut Imported) -> Result<(), ImportError> {
        for (framework, list) in file.root().entries()? {
            let builder = RecordBuilder {
                file,
                framework: framework.to_string(),
            };
            for item in list.array()? {
                let size = item.get("size")?.u64()?;
                let spec = KernelSpec::Gemm {
                    m: size,
                    n: size,
                    k: size,
                    dtype: dtype_at(&item.get("dtype")?)?,
                };
                let std_ms = item
                    .opt("std_ms")
                    .map(|n| n.f64_or_missing())
                    .transpose()?
                    .flatten();
                // Here `samples` is a count of iterations, not a list.
                let n = item.opt("samples").map(|n| n.u64()).transpose()?;
                let avg_ms = item.get("avg_ms")?.f64_or_missing()?;
                let timing = timing_from_ms(avg_ms, std_ms, n);
                let mut record = builder.record(spec, timing, item.path());
                if record.timing.is_none() {
                    record.error = Some(no_time_reason("avg_ms", avg_ms));
                }
                let tflops = item
                    .opt("tflops")
                    .map(|n| n.f64_or_missing())
                    .transpose()?
                    .flatten();
                if let Some(t) = tflops {
                    record.reported.insert("tflops".into(), t);
                }
                let ours = record.flop_per_s().map(|f| f / 1e12);
                check_rate(out, file, &record, "tflops", tflops, ours);
                out.records.push(record);
            }
        }
        Ok(())
    }
}
