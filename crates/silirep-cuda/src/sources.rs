//! The `.cu` kernel sources, embedded at build time and compiled with NVRTC when the backend
//! opens, for the architecture of the GPU actually present.
//!
//! Every file gets `common.cuh` prepended instead of `#include`d: NVRTC then needs neither an
//! include path nor the CUDA headers, only its own shared library.

/// Prepended to every file below.
pub const COMMON: &str = include_str!("kernels/common.cuh");

/// One compilation unit and the `extern "C"` kernels the Rust side looks up in it.
pub struct Source {
    pub file: &'static str,
    pub text: &'static str,
    pub kernels: &'static [&'static str],
}

pub const SOURCES: &[Source] = &[
    Source {
        file: "fill.cu",
        text: include_str!("kernels/fill.cu"),
        kernels: &[
            "fill_random_f32",
            "fill_random_f64",
            "fill_random_f16",
            "fill_random_bf16",
            "fill_random_e4m3",
        ],
    },
    Source {
        file: "bandwidth.cu",
        text: include_str!("kernels/bandwidth.cu"),
        kernels: &[
            "bandwidth_read",
            "bandwidth_write",
            "bandwidth_copy",
            "bandwidth_copy_tma",
            "bandwidth_triad",
        ],
    },
    Source {
        file: "attention.cu",
        text: include_str!("kernels/attention.cu"),
        kernels: &[
            "softmax_rows_f16",
            "softmax_rows_bf16",
            "flash_attention_f16",
            "flash_attention_bf16",
            "flash_attention_wgmma_f16",
            "flash_attention_wgmma_bf16",
        ],
    },
    Source {
        file: "layer.cu",
        text: include_str!("kernels/layer.cu"),
        kernels: &[
            "rms_norm_f16",
            "rms_norm_bf16",
            "silu_mul_f16",
            "silu_mul_bf16",
            "add_f16",
            "add_bf16",
        ],
    },
    Source {
        file: "decode.cu",
        text: include_str!("kernels/decode.cu"),
        kernels: &[
            "decode_qkv2_f16",
            "decode_qkv2_bf16",
            "decode_qkv4_f16",
            "decode_qkv4_bf16",
            "decode_qkv8_f16",
            "decode_qkv8_bf16",
            "decode_residual2_f16",
            "decode_residual2_bf16",
            "decode_residual4_f16",
            "decode_residual4_bf16",
            "decode_residual8_f16",
            "decode_residual8_bf16",
            "decode_swiglu2_f16",
            "decode_swiglu2_bf16",
            "decode_swiglu4_f16",
            "decode_swiglu4_bf16",
            "decode_swiglu8_f16",
            "decode_swiglu8_bf16",
            "decode_attention_f16",
            "decode_attention_bf16",
            "decode_attention_early_f16",
            "decode_attention_early_bf16",
            "decode_kv_append_f16",
            "decode_kv_append_bf16",
            "decode_swiglu_tiles_f16",
            "decode_swiglu_tiles_bf16",
        ],
    },
    Source {
        file: "layer_backward.cu",
        text: include_str!("kernels/layer_backward.cu"),
        kernels: &[
            "swiglu_backward_f16",
            "swiglu_backward_bf16",
            "rms_norm_backward_f16",
            "rms_norm_backward_bf16",
            "softmax_backward_f16",
            "softmax_backward_bf16",
            "to_heads",
            "from_heads_sum_f16",
            "from_heads_sum_bf16",
        ],
    },
    Source {
        file: "sweep.cu",
        text: include_str!("kernels/sweep.cu"),
        kernels: &["intensity_sweep"],
    },
    Source {
        file: INTERCONNECT_FILE,
        text: include_str!("kernels/interconnect.cu"),
        kernels: &["fill_pattern_f32", "fill_pattern_bf16", "peer_copy_push"],
    },
];

/// The one source every GPU of a multi-device measurement compiles (known input patterns),
/// not only the backend's main GPU.
pub const INTERCONNECT_FILE: &str = "interconnect.cu";

/// Dynamic shared memory of the fused attention kernel (`FA_SMEM_BYTES` in attention.cu).
pub const FLASH_SMEM_BYTES: u32 = 128 * 256 + 4 * 64 * 256;
/// The Hopper kernel's (`FA3_SMEM_BYTES`): a 128-row Q tile and two stages of 128-row K and V
/// tiles (32 KiB each), plus up to 1 KiB to align them to 1024 bytes.
pub const FLASH_WGMMA_SMEM_BYTES: u32 = 5 * 128 * 256 + 1024;

/// The full text NVRTC compiles for `source`.
pub fn compilation_unit(source: &Source) -> String {
    format!("{COMMON}\n#line 1 \"{}\"\n{}", source.file, source.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of every `extern "C" __global__` function defined in `text`.
    fn defined_kernels(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (pos, _) in text.match_indices("extern \"C\" __global__") {
            let mut rest = &text[pos..];
            // Skip `__launch_bounds__(...)`: the parameter list is the next parenthesis.
            if let Some(bounds) = rest.find("__launch_bounds__")
                && bounds < rest.find('{').unwrap_or(rest.len())
            {
                let after = bounds + rest[bounds..].find(')').expect("closed launch bounds") + 1;
                rest = &rest[after..];
            }
            let open = rest.find('(').expect("kernel has a parameter list");
            let name = rest[..open].split_whitespace().last().unwrap();
            names.push(name.to_string());
        }
        names
    }

    #[test]
    fn every_kernel_named_in_rust_is_defined_in_its_source() {
        for source in SOURCES {
            let defined = defined_kernels(source.text);
            for kernel in source.kernels {
                assert!(
                    defined.iter().any(|d| d == kernel),
                    "{kernel} is not defined in {}",
                    source.file
                );
            }
            // And nothing defined goes unregistered (a kernel nobody can launch is dead code).
            for d in &defined {
                assert!(
                    source.kernels.contains(&d.as_str()),
                    "{d} in {} is not registered",
                    source.file
                );
            }
        }
    }

    #[test]
    fn sources_are_balanced_and_header_free() {
        for source in SOURCES
            .iter()
            .map(|s| (s.file, s.text))
            .chain([("common.cuh", COMMON)])
        {
            let (file, text) = source;
            for (open, close) in [('{', '}'), ('(', ')'), ('[', ']')] {
                let opens = text.matches(open).count();
                let closes = text.matches(close).count();
                assert_eq!(opens, closes, "{file}: unbalanced {open}{close}");
            }
            assert!(!text.contains("#include"), "{file} must not need headers");
        }
    }

    #[test]
    fn flash_shared_memory_matches_the_source() {
        let text = SOURCES
            .iter()
            .find(|s| s.file == "attention.cu")
            .unwrap()
            .text;
        assert!(text.contains("#define FA_BLOCK_M 128") && text.contains("#define FA_BLOCK_N 64"));
        assert!(text.contains("#define FA_ROW_BYTES 256"));
        assert_eq!(FLASH_SMEM_BYTES, 98304);
        assert!(text.contains(&format!(
            "#define FA_THREADS {}",
            crate::attention::FLASH_THREADS
        )));
        // Two blocks per SM (`__launch_bounds__(FA_THREADS, 2)`) must fit in an H100's 227 KiB.
        const { assert!(2 * (FLASH_SMEM_BYTES + 1024) <= 227 * 1024) };
        // The Hopper kernel: one block per SM, its barriers in 1 KiB of static shared memory.
        assert!(text.contains("#define FA3_STAGES 2") && text.contains("#define FA3_BLOCK_N 128"));
        assert!(
            text.contains("#define FA3_SMEM_BYTES (FA3_TILE_BYTES * (1 + 2 * FA3_STAGES) + 1024)")
        );
        assert!(text.contains(&format!(
            "#define FA3_THREADS {}",
            crate::attention::FLASH_WGMMA_THREADS
        )));
        const { assert!(FLASH_WGMMA_SMEM_BYTES + 1024 <= 227 * 1024) };
    }
}
