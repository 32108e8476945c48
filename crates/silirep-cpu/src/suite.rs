//! Which configurations each suite measures on a CPU: the sizes below, bandwidth arrays sized
//! from the last-level cache (passed in by the backend, which knows it).

use silirep_core::{AttentionImpl, BandwidthOp, Dtype, KernelSpec, LayerShape, Pass, Suite};

/// The sizes each suite measures on a CPU: small enough that `quick` stays under a minute
/// on two cores, large enough in `standard` and `full` to reach the steady state.
struct SuiteSizes {
    /// Bandwidth buffers as multiples of the last-level cache (≥ 4 defeats it).
    bandwidth_llc_multiples: &'static [u64],
    gemm_f32: &'static [u64],
    gemm_f16: &'static [u64],
    attention_seq_lens: &'static [u64],
    layer_seq_lens: &'static [u64],
    decode_batches: &'static [u64],
    sweep_fmas: &'static [u64],
}

impl SuiteSizes {
    fn of(suite: Suite) -> SuiteSizes {
        match suite {
            Suite::Quick => SuiteSizes {
                bandwidth_llc_multiples: &[4],
                gemm_f32: &[256, 1024],
                gemm_f16: &[256],
                attention_seq_lens: &[256],
                layer_seq_lens: &[16],
                decode_batches: &[1],
                sweep_fmas: &[1, 16, 128],
            },
            Suite::Standard => SuiteSizes {
                bandwidth_llc_multiples: &[4, 8],
                gemm_f32: &[256, 512, 1024, 2048, 4096],
                gemm_f16: &[512, 1024, 2048],
                attention_seq_lens: &[256, 512, 1024],
                layer_seq_lens: &[16, 64, 128],
                decode_batches: &[1, 4, 16],
                sweep_fmas: &[1, 2, 4, 8, 16, 32, 64, 128, 256],
            },
            Suite::Full => SuiteSizes {
                bandwidth_llc_multiples: &[4, 8, 16],
                gemm_f32: &[128, 256, 512, 1024, 2048, 3072, 4096],
                gemm_f16: &[256, 512, 1024, 2048, 4096],
                attention_seq_lens: &[256, 512, 1024, 2048],
                layer_seq_lens: &[16, 32, 64, 128, 256],
                decode_batches: &[1, 2, 4, 8, 16, 32],
                sweep_fmas: &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            },
        }
    }
}

/// Every configuration of `suite`; `bandwidth_bytes(m)` is the array size for `m` times the
/// last-level cache.
pub(crate) fn configurations(
    suite: Suite,
    bandwidth_bytes: impl Fn(u64) -> u64,
) -> Vec<KernelSpec> {
    let mut specs = Vec::new();
    let sizes = SuiteSizes::of(suite);
    let SuiteSizes {
        bandwidth_llc_multiples: bw_multiples,
        gemm_f32,
        gemm_f16,
        attention_seq_lens: attn_seqs,
        layer_seq_lens: layer_seqs,
        decode_batches,
        sweep_fmas: fmas,
    } = sizes;
    for &multiple in bw_multiples {
        for op in BandwidthOp::ALL {
            specs.push(KernelSpec::Bandwidth {
                op,
                array_bytes: bandwidth_bytes(multiple),
                dtype: Dtype::F64,
            });
        }
    }
    for (sizes, dtype) in [(gemm_f32, Dtype::F32), (gemm_f16, Dtype::F16)] {
        for &s in sizes {
            specs.push(KernelSpec::Gemm {
                m: s,
                n: s,
                k: s,
                dtype,
            });
        }
    }
    for &seq_len in attn_seqs {
        for implementation in [AttentionImpl::Naive, AttentionImpl::Fused] {
            specs.push(KernelSpec::Attention {
                implementation,
                batch: 1,
                heads: if suite == Suite::Quick { 8 } else { 32 },
                seq_len,
                head_dim: 128,
                dtype: Dtype::F32,
                causal: false,
            });
        }
    }
    for &seq_len in layer_seqs {
        specs.push(KernelSpec::mistral_layer(
            Pass::Forward,
            seq_len,
            Dtype::F32,
        ));
        specs.push(KernelSpec::mistral_layer(
            Pass::Backward,
            seq_len,
            Dtype::F32,
        ));
    }
    for &batch in decode_batches {
        specs.push(KernelSpec::Decode {
            batch,
            layers: 1,
            shape: LayerShape::MISTRAL_7B,
            context: silirep_core::DECODE_CONTEXT,
            dtype: Dtype::F32,
        });
    }
    let elements = bandwidth_bytes(4) / 4;
    for &f in fmas {
        specs.push(KernelSpec::IntensitySweep {
            elements,
            fmas_per_element: f,
            dtype: Dtype::F32,
        });
    }
    specs
}
