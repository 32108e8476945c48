//! The configurations the CUDA backend measures per suite, sized for a data-centre GPU.
//!
//! Built from the same `KernelSpec` shapes the CPU backend uses (bandwidth in f64, attention
//! with 32 heads of 128, Mistral-7B layers), so reports line the backends up without special
//! cases; only the sizes and the precisions differ.

use silirep_core::{
    AttentionImpl, BandwidthOp, CollectiveOp, Dtype, HostMemory, KernelSpec, LayerShape, Pass,
    Suite, TransferDirection,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The sweep's array: 256 MiB of f32, ≥ 5× any current GPU's L2.
pub const SWEEP_ELEMENTS: u64 = 64 * MIB;

pub fn specs(suite: Suite) -> Vec<KernelSpec> {
    struct Sizes {
        bandwidth: &'static [u64],
        gemm: &'static [u64],
        gemm_f32_max: u64,
        attention: &'static [u64],
        layer: &'static [u64],
        decode: &'static [u64],
        fmas: &'static [u64],
    }
    let s = match suite {
        Suite::Quick => Sizes {
            bandwidth: &[256 * MIB],
            gemm: &[1024, 4096],
            gemm_f32_max: 4096,
            attention: &[1024],
            layer: &[512],
            decode: &[1],
            fmas: &[1, 16, 256],
        },
        Suite::Standard => Sizes {
            bandwidth: &[256 * MIB, GIB, 2 * GIB],
            gemm: &[512, 1024, 2048, 4096, 8192],
            gemm_f32_max: 8192,
            attention: &[512, 1024, 2048, 4096, 8192],
            layer: &[512, 2048, 4096],
            decode: &[1, 4, 16, 64],
            fmas: &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
        },
        Suite::Full => Sizes {
            bandwidth: &[256 * MIB, GIB, 2 * GIB, 4 * GIB, 8 * GIB],
            gemm: &[512, 1024, 2048, 4096, 8192, 16384],
            gemm_f32_max: 8192,
            attention: &[512, 1024, 2048, 4096, 8192],
            layer: &[512, 1024, 2048, 4096, 8192],
            decode: &[1, 2, 4, 8, 16, 32, 64],
            fmas: &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
        },
    };
    let mut specs = Vec::new();
    for &array_bytes in s.bandwidth {
        for op in BandwidthOp::ALL {
            specs.push(KernelSpec::Bandwidth {
                op,
                array_bytes,
                dtype: Dtype::F64,
            });
        }
    }
    for dtype in [
        Dtype::F32,
        Dtype::Tf32,
        Dtype::F16,
        Dtype::Bf16,
        Dtype::Fp8E4m3,
    ] {
        for &size in s.gemm {
            // Plain f32 runs on the CUDA cores at ~1/15 of the tensor-core rate: 16384³ would
            // take seconds per iteration and add nothing the smaller sizes do not show.
            if dtype == Dtype::F32 && size > s.gemm_f32_max {
                continue;
            }
            specs.push(KernelSpec::Gemm {
                m: size,
                n: size,
                k: size,
                dtype,
            });
        }
    }
    for &seq_len in s.attention {
        for dtype in [Dtype::F16, Dtype::Bf16] {
            for implementation in [AttentionImpl::Naive, AttentionImpl::Fused] {
                specs.push(KernelSpec::Attention {
                    implementation,
                    batch: 1,
                    heads: 32,
                    seq_len,
                    head_dim: 128,
                    dtype,
                    causal: false,
                });
            }
        }
    }
    for &seq_len in s.layer {
        specs.push(KernelSpec::mistral_layer(
            Pass::Forward,
            seq_len,
            Dtype::Bf16,
        ));
    }
    if suite != Suite::Quick {
        specs.push(KernelSpec::mistral_layer(
            Pass::Backward,
            s.layer[0],
            Dtype::Bf16,
        ));
    }
    for &batch in s.decode {
        specs.push(KernelSpec::Decode {
            batch,
            layers: LayerShape::MISTRAL_7B_LAYERS,
            shape: LayerShape::MISTRAL_7B,
            context: silirep_core::DECODE_CONTEXT,
            dtype: Dtype::F16,
        });
    }
    for &fmas_per_element in s.fmas {
        specs.push(KernelSpec::IntensitySweep {
            elements: SWEEP_ELEMENTS,
            fmas_per_element,
            dtype: Dtype::F32,
        });
    }
    specs
}

/// The interconnect configurations over the GPUs `gpus`: host↔device copies (pinned and
/// pageable, both ways) always — on the first GPU, on every GPU in the full suite — and, with
/// two GPUs or more, peer copies for every ordered pair (the matrix) and NCCL collectives over
/// all of them. The smallest peer copy (8 bytes) is the latency; the collective ladder is
/// nccl-tests' usual 1 KiB … 4 GiB.
pub fn interconnect_specs(suite: Suite, gpus: &[u32]) -> Vec<KernelSpec> {
    let (host, peer, collective): (&[u64], &[u64], Vec<u64>) = match suite {
        Suite::Quick => (&[64 * MIB], &[8, 64 * MIB], vec![MIB, 64 * MIB]),
        // 1 KiB, 4 KiB, ... 4 GiB: ×4 steps.
        Suite::Standard => (
            &[MIB, 64 * MIB, GIB],
            &[8, 64 * KIB, MIB, 16 * MIB, 256 * MIB, GIB],
            (0..12).map(|i| KIB << (2 * i)).collect(),
        ),
        // ×2 steps.
        Suite::Full => (
            &[4 * KIB, MIB, 64 * MIB, GIB, 4 * GIB],
            &[8, 4 * KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB, GIB, 4 * GIB],
            (0..23).map(|i| KIB << i).collect(),
        ),
    };
    let mut specs = Vec::new();
    let host_gpus = if suite == Suite::Full {
        gpus
    } else {
        &gpus[..gpus.len().min(1)]
    };
    for &device in host_gpus {
        for memory in [HostMemory::Pinned, HostMemory::Pageable] {
            for direction in [
                TransferDirection::HostToDevice,
                TransferDirection::DeviceToHost,
            ] {
                for &bytes in host {
                    specs.push(KernelSpec::HostTransfer {
                        direction,
                        memory,
                        device,
                        bytes,
                    });
                }
            }
        }
    }
    if gpus.len() < 2 {
        return specs;
    }
    for &src_device in gpus {
        for &dst_device in gpus {
            if src_device == dst_device {
                continue;
            }
            for &bytes in peer {
                specs.push(KernelSpec::PeerCopy {
                    src_device,
                    dst_device,
                    bytes,
                });
            }
        }
    }
    for op in CollectiveOp::ALL {
        for dtype in [Dtype::F32, Dtype::Bf16] {
            for &bytes in &collective {
                specs.push(KernelSpec::Collective {
                    op,
                    bytes,
                    dtype,
                    devices: gpus.to_vec(),
                });
            }
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interconnect_covers_every_ordered_pair_and_the_ladder() {
        let one = interconnect_specs(Suite::Standard, &[0]);
        assert!(
            one.iter()
                .all(|s| matches!(s, KernelSpec::HostTransfer { .. }))
        );
        assert_eq!(one.len(), 2 * 2 * 3);
        let four = interconnect_specs(Suite::Standard, &[0, 1, 2, 3]);
        let pairs: std::collections::BTreeSet<(u32, u32)> = four
            .iter()
            .filter_map(|s| match s {
                KernelSpec::PeerCopy {
                    src_device,
                    dst_device,
                    ..
                } => Some((*src_device, *dst_device)),
                _ => None,
            })
            .collect();
        assert_eq!(pairs.len(), 12);
        let sizes: Vec<u64> = four
            .iter()
            .filter_map(|s| match s {
                KernelSpec::Collective {
                    op: CollectiveOp::AllReduce,
                    dtype: Dtype::F32,
                    bytes,
                    ..
                } => Some(*bytes),
                _ => None,
            })
            .collect();
        assert_eq!(sizes.first(), Some(&KIB));
        assert_eq!(sizes.last(), Some(&(4 * GIB)));
        // Every size splits evenly over 4 ranks of either dtype (nccl-tests' slices).
        for spec in &four {
            if let KernelSpec::Collective {
                op, bytes, dtype, ..
            } = spec
            {
                let elements = bytes / dtype.size_bytes() as u64;
                assert!(op.buffer_elements(elements, 4).is_some(), "{spec:?}");
            }
        }
        for spec in &four {
            assert_eq!(spec.family(), silirep_core::KernelFamily::Interconnect);
        }
    }

    #[test]
    fn suites_grow_and_bandwidth_defeats_a_50_mb_l2() {
        let quick = specs(Suite::Quick);
        let standard = specs(Suite::Standard);
        let full = specs(Suite::Full);
        assert!(quick.len() < standard.len() && standard.len() < full.len());
        for spec in &full {
            if let KernelSpec::Bandwidth { array_bytes, .. } = spec {
                assert!(*array_bytes >= 5 * 50_000_000, "{spec:?}");
            }
        }
    }

    /// The suite's work, counted by silirep-core's formulas (never restated here), against
    /// hand counts for the configurations the H100 comparison uses.
    #[test]
    fn flop_and_byte_accounting_matches_hand_counts() {
        let standard = specs(Suite::Standard);
        let gemm = KernelSpec::Gemm {
            m: 8192,
            n: 8192,
            k: 8192,
            dtype: Dtype::Bf16,
        };
        assert!(standard.contains(&gemm));
        assert_eq!(gemm.flops(), Some(2.0 * 8192f64.powi(3)));
        assert_eq!(gemm.bytes(), Some(3.0 * 2.0 * 8192f64.powi(2)));
        let fp8 = KernelSpec::Gemm {
            m: 4096,
            n: 4096,
            k: 4096,
            dtype: Dtype::Fp8E4m3,
        };
        // fp8 operands (1 byte) and a 16-bit result.
        assert_eq!(
            fp8.bytes(),
            Some(2.0 * 4096f64.powi(2) + 2.0 * 4096f64.powi(2))
        );

        let copy = KernelSpec::Bandwidth {
            op: BandwidthOp::Copy,
            array_bytes: GIB,
            dtype: Dtype::F64,
        };
        let read = KernelSpec::Bandwidth {
            op: BandwidthOp::Read,
            array_bytes: GIB,
            dtype: Dtype::F64,
        };
        let triad = KernelSpec::Bandwidth {
            op: BandwidthOp::Triad,
            array_bytes: GIB,
            dtype: Dtype::F64,
        };
        assert!(standard.contains(&copy) && standard.contains(&read) && standard.contains(&triad));
        assert_eq!(copy.bytes(), Some(2.0 * GIB as f64));
        assert_eq!(read.bytes(), Some(GIB as f64));
        assert_eq!(triad.bytes(), Some(3.0 * GIB as f64));
        assert_eq!(triad.flops(), Some(2.0 * (GIB / 8) as f64));

        let fused = KernelSpec::Attention {
            implementation: AttentionImpl::Fused,
            batch: 1,
            heads: 32,
            seq_len: 4096,
            head_dim: 128,
            dtype: Dtype::F16,
            causal: false,
        };
        assert!(standard.contains(&fused));
        assert_eq!(fused.flops(), Some(4.0 * 32.0 * 4096f64.powi(2) * 128.0));

        let decode = standard
            .iter()
            .find(|s| matches!(s, KernelSpec::Decode { batch: 1, .. }))
            .unwrap();
        // All 32 layers' f16 weights stream once per token: ≈ 14 GB, and the KV cache of
        // 1024 positions: 32 layers × 2 × 1024 × 1024 × 2 bytes ≈ 134 MB.
        let weights = 32.0 * 218_103_808.0 * 2.0;
        let cache = 32.0 * 2.0 * 1024.0 * 1024.0 * 2.0;
        assert!((decode.bytes().unwrap() - weights - cache).abs() < 1e6);
        let attention = 32.0 * 4.0 * 32.0 * 1024.0 * 128.0;
        assert_eq!(decode.flops(), Some(32.0 * 218_103_808.0 * 2.0 + attention));

        let sweep = KernelSpec::IntensitySweep {
            elements: SWEEP_ELEMENTS,
            fmas_per_element: 64,
            dtype: Dtype::F32,
        };
        assert!(standard.contains(&sweep));
        assert_eq!(sweep.arithmetic_intensity(), Some(16.0));
    }

    #[test]
    fn every_spec_is_one_the_backend_dispatches() {
        for spec in specs(Suite::Full) {
            assert!(
                matches!(
                    spec,
                    KernelSpec::Gemm { .. }
                        | KernelSpec::Bandwidth { .. }
                        | KernelSpec::Attention { .. }
                        | KernelSpec::Layer { .. }
                        | KernelSpec::Decode { .. }
                        | KernelSpec::IntensitySweep { .. }
                ),
                "{spec:?}"
            );
        }
    }
}
