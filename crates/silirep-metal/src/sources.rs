//! The Metal Shading Language sources, embedded at build time and compiled at run time with
//! `newLibraryWithSource` (so no Xcode toolchain is needed to build silirep), and the kernel
//! functions the Rust side looks up in each.

/// One `.metal` file and the `kernel` functions the backend looks up by name in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelSource {
    pub file: &'static str,
    pub text: &'static str,
    pub functions: &'static [&'static str],
}

pub(crate) const FILL: KernelSource = KernelSource {
    file: "fill.metal",
    text: include_str!("kernels/fill.metal"),
    functions: &["fill_random_f32", "fill_random_f16", "fill_random_bf16"],
};

pub(crate) const BANDWIDTH: KernelSource = KernelSource {
    file: "bandwidth.metal",
    text: include_str!("kernels/bandwidth.metal"),
    functions: &[
        "bandwidth_read",
        "bandwidth_write",
        "bandwidth_copy",
        "bandwidth_triad",
    ],
};

pub(crate) const REDUCTIONS: KernelSource = KernelSource {
    file: "reductions.metal",
    text: include_str!("kernels/reductions.metal"),
    functions: &[
        "softmax_rows_f32",
        "softmax_rows_f16",
        "rms_norm_f32",
        "rms_norm_f16",
        "rms_norm_backward_f32",
        "rms_norm_backward_f16",
        "attention_softmax_backward_f32",
        "attention_softmax_backward_f16",
    ],
};

pub(crate) const ELEMENTWISE: KernelSource = KernelSource {
    file: "elementwise.metal",
    text: include_str!("kernels/elementwise.metal"),
    functions: &[
        "add_f32",
        "add_f16",
        "swiglu_f32",
        "swiglu_f16",
        "swiglu_backward_f32",
        "swiglu_backward_f16",
    ],
};

pub(crate) const ATTENTION_FUSED: KernelSource = KernelSource {
    file: "attention_fused.metal",
    text: include_str!("kernels/attention_fused.metal"),
    functions: &["attention_fused_f32", "attention_fused_f16"],
};

pub(crate) const INTENSITY_SWEEP: KernelSource = KernelSource {
    file: "intensity_sweep.metal",
    text: include_str!("kernels/intensity_sweep.metal"),
    functions: &["intensity_sweep_f32"],
};

pub(crate) const ALL: [KernelSource; 6] = [
    FILL,
    BANDWIDTH,
    REDUCTIONS,
    ELEMENTWISE,
    ATTENTION_FUSED,
    INTENSITY_SWEEP,
];

/// The source that defines kernel function `name`.
pub(crate) fn source_of(name: &str) -> Option<&'static KernelSource> {
    ALL.iter().find(|s| s.functions.contains(&name))
}

/// Names declared as `kernel void NAME(` in Metal source text.
#[cfg(test)]
fn declared_kernels(text: &str) -> Vec<&str> {
    text.split("kernel void ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(str::trim)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_looked_up_function_is_declared_in_its_file() {
        for source in ALL {
            assert!(!source.text.trim().is_empty(), "{} is empty", source.file);
            let declared = declared_kernels(source.text);
            for name in source.functions {
                assert!(
                    declared.contains(name),
                    "{} does not declare `kernel void {name}(`; it declares {declared:?}",
                    source.file
                );
            }
            // And the other way round: a kernel nobody looks up is dead code.
            for name in &declared {
                assert!(
                    source.functions.contains(name),
                    "{} declares {name}, which the backend never looks up",
                    source.file
                );
            }
        }
    }

    #[test]
    fn function_names_are_unique_across_files() {
        let mut names: Vec<&str> = ALL
            .iter()
            .flat_map(|s| s.functions.iter().copied())
            .collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total);
        assert_eq!(
            source_of("bandwidth_triad").unwrap().file,
            "bandwidth.metal"
        );
        assert!(source_of("no_such_kernel").is_none());
    }

    #[test]
    fn declared_kernels_parses_declarations() {
        let text =
            "kernel void a_f32(device float* x) {}\n// kernel helper\nkernel void b (int y) {}";
        assert_eq!(declared_kernels(text), vec!["a_f32", "b"]);
    }

    #[test]
    fn parameter_structs_match_the_rust_layouts() {
        // The Rust #[repr(C)] mirrors are 16-byte multiples; the Metal structs must declare
        // the same fields so setBytes hands the kernel what it expects.
        for (file, fields) in [
            (
                "fill.metal",
                "uint count;\n    uint seed_low;\n    uint seed_high;\n    float scale;",
            ),
            ("intensity_sweep.metal", "float multiplier;"),
            ("attention_fused.metal", "uint unused[3];"),
        ] {
            let source = ALL.iter().find(|s| s.file == file).unwrap();
            assert!(source.text.contains(fields), "{file} lacks `{fields}`");
        }
    }
}
