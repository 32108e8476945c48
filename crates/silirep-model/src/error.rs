//! The one error type of the workload model. Every variant names what was wrong and, where
//! the input came from a file, the JSON path, what was expected and what was found; the
//! caller adds the file name. Nothing in this crate panics on user data.

use silirep_core::Dtype;

/// Why a shape could not be built or a prediction could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A field of a Hugging Face `config.json` is missing or has the wrong type or value.
    #[error("config.json `{path}`: expected {expected}, found {found}")]
    Config {
        /// JSON path of the field, e.g. `num_hidden_layers`.
        path: String,
        /// What the field should hold.
        expected: String,
        /// What the file holds (`missing` when absent).
        found: String,
    },
    /// A model shape is internally inconsistent (zero layers, heads not a multiple of KV heads…).
    #[error("model shape `{model}`: {reason}")]
    InvalidShape {
        /// The shape's name.
        model: String,
        /// What is inconsistent.
        reason: String,
    },
    /// A count that must be at least one (batch, prompt tokens, output tokens…) was zero.
    #[error("{what} must be at least 1, found 0")]
    Zero {
        /// Which count, e.g. `decode batch`.
        what: &'static str,
    },
    /// A rate, latency, fraction or memory size outside its valid range.
    #[error("{what}: expected {expected}, found {found}")]
    OutOfRange {
        /// Which value, e.g. `link \`thunderbolt\` bandwidth_bytes_per_s`.
        what: String,
        /// The valid range.
        expected: &'static str,
        /// The value given.
        found: f64,
    },
    /// The machine has no compute roof for the precision the work runs at.
    #[error("machine `{machine}` has no compute roof for {precision} (it has: {available})")]
    MissingComputeRoof {
        /// The machine's name.
        machine: String,
        /// The precision the work needs.
        precision: Dtype,
        /// The precisions it does have, comma-separated (`none` when none).
        available: String,
    },
    /// The machine has no memory-bandwidth roof.
    #[error("machine `{machine}` has no memory roof")]
    MissingMemoryRoof {
        /// The machine's name.
        machine: String,
    },
    /// The work moves bytes over a link but the machine lists no link roof.
    #[error("machine `{machine}` has no link roof, but the work sends {bytes} bytes over a link")]
    MissingLinkRoof {
        /// The machine's name.
        machine: String,
        /// Bytes the work sends.
        bytes: f64,
    },
    /// Two roofs of the same kind (same precision, same link name, or two memory roofs): which
    /// one binds would be ambiguous.
    #[error("machine `{machine}` lists two roofs of kind {kind}; give one per kind")]
    DuplicateRoof {
        /// The machine's name.
        machine: String,
        /// The repeated kind.
        kind: String,
    },
    /// A planner was asked for something the model cannot do (expert parallelism of a dense model…).
    #[error("{0}")]
    Unsupported(String),
}
