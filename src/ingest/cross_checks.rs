//! Checks that need more than one file: published numbers that contradict each other.

use super::{Dataset, Warning};
use silirep_core::{KernelSpec, ModelPhase};

/// Notes starting with this mark a record whose value contradicts other data; reports flag
/// every comparison that uses it.
pub const SUSPECT_PREFIX: &str = "suspect:";

/// A "decode" rate equal (within 1%) to a prefill rate measured on the same machine with the
/// same framework and model was almost certainly copied from the prefill benchmark: decode
/// streams every weight per token and runs one to two orders of magnitude slower.
pub fn decode_rates_that_are_prefill(dataset: &mut Dataset) {
    let mut warnings = Vec::new();
    let mut suspects = Vec::new();
    for (index, decode) in dataset.records.iter().enumerate() {
        let KernelSpec::Model {
            phase: ModelPhase::Decode,
            model,
            ..
        } = &decode.spec
        else {
            continue;
        };
        let Some(decode_rate) = decode.tokens_per_s() else {
            continue;
        };
        for prefill in &dataset.records {
            let same = prefill.machine == decode.machine
                && prefill.framework == decode.framework
                && matches!(&prefill.spec, KernelSpec::Model { phase: ModelPhase::Prefill, model: m, .. } if m == model);
            if let Some(prefill_rate) = prefill.tokens_per_s().filter(|_| same)
                && ((decode_rate - prefill_rate) / prefill_rate).abs() < 0.01
            {
                suspects.push(index);
                warnings.push(Warning {
                    file: decode.source.file.clone(),
                    location: decode.source.json_path.clone(),
                    message: format!(
                        "decode rate {decode_rate:.1} tokens/s equals the prefill rate measured in {} {} ({prefill_rate:.1} tokens/s): it is probably a prefill rate, so decode comparisons using it are suspect",
                        prefill.source.file, prefill.source.json_path
                    ),
                });
                break;
            }
        }
    }
    for index in suspects {
        dataset.records[index].notes.push(format!(
            "{SUSPECT_PREFIX} equals a prefill rate on the same machine"
        ));
    }
    dataset.warnings.extend(warnings);
    dataset.warnings.sort();
}
