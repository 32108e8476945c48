//! Which configurations the Metal backend measures in each suite, sized for Apple GPUs: the
//! same kernel families and shapes as the other backends (so reports compare runs without
//! special cases), with sizes a laptop GPU with unified memory finishes in reasonable time.

use silirep_core::{
    AttentionImpl, BandwidthOp, Dtype, HostMemory, KernelSpec, LayerShape, Pass, Suite,
    TransferDirection,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Bandwidth arrays must be at least this many times the last-level cache, so repeated
/// passes cannot be served from cache.
pub(crate) const CACHE_MULTIPLE: u64 = 4;

/// Most buffer sets a bandwidth configuration rotates through.
const MAX_BUFFER_SETS: u64 = 16;

/// Buffer sets to rotate so that one pass over all of them is at least CACHE_MULTIPLE × the
/// cache: an iteration then reads data evicted since it was last touched. The suite only
/// lists arrays that are large enough on their own (one set); smaller `--sizes` rotate.
pub(crate) fn buffer_sets(bytes_per_set: u64, cache_bytes: u64) -> u64 {
    (CACHE_MULTIPLE * cache_bytes)
        .div_ceil(bytes_per_set.max(1))
        .clamp(1, MAX_BUFFER_SETS)
}

/// What the suite needs to know about the device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    pub last_level_cache_bytes: u64,
}

pub(crate) fn configurations(profile: Profile, suite: Suite) -> Vec<KernelSpec> {
    let mut specs = Vec::new();
    specs.extend(gemm(suite));
    specs.extend(bandwidth(profile, suite));
    specs.extend(attention(suite));
    specs.extend(layer(suite));
    specs.extend(decode(suite));
    specs.extend(intensity_sweep(suite));
    specs.extend(host_transfer(suite));
    specs
}

/// Blits between CPU-visible and GPU-private buffers, both ways, named as the CUDA
/// backend's host transfers (pinned: Metal's shared buffers are wired memory).
fn host_transfer(suite: Suite) -> Vec<KernelSpec> {
    let sizes = pick(
        suite,
        &[64 * MIB],
        &[MIB, 64 * MIB, GIB],
        &[MIB, 64 * MIB, GIB],
    );
    let mut specs = Vec::new();
    for direction in [
        TransferDirection::HostToDevice,
        TransferDirection::DeviceToHost,
    ] {
        for &bytes in &sizes {
            specs.push(KernelSpec::HostTransfer {
                direction,
                memory: HostMemory::Pinned,
                device: 0,
                bytes,
            });
        }
    }
    specs
}

fn pick(suite: Suite, quick: &[u64], standard: &[u64], full: &[u64]) -> Vec<u64> {
    match suite {
        Suite::Quick => quick,
        Suite::Standard => standard,
        Suite::Full => full,
    }
    .to_vec()
}

/// MPS GEMMs in f32 and f16. bf16 is left out: the backend runs MPSMatrixMultiplication in
/// its documented float32/float16 types only (a requested bf16 GEMM is recorded as
/// unsupported).
fn gemm(suite: Suite) -> Vec<KernelSpec> {
    let sizes = pick(
        suite,
        &[1024],
        &[1024, 2048, 4096, 8192],
        &[512, 1024, 2048, 3072, 4096, 6144, 8192],
    );
    let mut specs = Vec::new();
    for dtype in [Dtype::F32, Dtype::F16] {
        for &n in &sizes {
            specs.push(KernelSpec::Gemm {
                m: n,
                n,
                k: n,
                dtype,
            });
        }
    }
    specs
}

fn bandwidth(profile: Profile, suite: Suite) -> Vec<KernelSpec> {
    let candidates = pick(
        suite,
        &[GIB],
        &[256 * MIB, GIB, 2 * GIB],
        &[128 * MIB, 256 * MIB, 512 * MIB, GIB, 2 * GIB, 4 * GIB],
    );
    let minimum = CACHE_MULTIPLE * profile.last_level_cache_bytes;
    let mut sizes: Vec<u64> = candidates.into_iter().filter(|&b| b >= minimum).collect();
    if sizes.is_empty() {
        // A cache larger than every candidate: measure at the smallest size that is honest.
        sizes.push(minimum.next_power_of_two());
    }
    let mut specs = Vec::new();
    for op in BandwidthOp::ALL {
        for &array_bytes in &sizes {
            specs.push(KernelSpec::Bandwidth {
                op,
                array_bytes,
                dtype: Dtype::F32,
            });
        }
    }
    specs
}

/// 32 heads × 128 dimensions (Mistral-7B's attention), batch 1, f16.
fn attention(suite: Suite) -> Vec<KernelSpec> {
    let seq_lens = pick(
        suite,
        &[1024],
        &[512, 1024, 2048, 4096],
        &[512, 1024, 2048, 4096, 8192],
    );
    let mut specs = Vec::new();
    for implementation in [AttentionImpl::Naive, AttentionImpl::Fused] {
        for &seq_len in &seq_lens {
            specs.push(KernelSpec::Attention {
                implementation,
                batch: 1,
                heads: 32,
                seq_len,
                head_dim: 128,
                dtype: Dtype::F16,
                causal: false,
            });
        }
    }
    specs
}

fn layer(suite: Suite) -> Vec<KernelSpec> {
    let seq_lens = pick(suite, &[256], &[256, 512, 1024], &[256, 512, 1024, 2048]);
    let mut specs = Vec::new();
    for pass in [Pass::Forward, Pass::Backward] {
        for &seq_len in &seq_lens {
            specs.push(KernelSpec::mistral_layer(pass, seq_len, Dtype::F16));
        }
    }
    specs
}

/// All 32 Mistral-7B layers in f16 (about 14 GB of weights); a Mac with less memory records
/// these as out of memory rather than silently measuring fewer layers. No KV cache (context
/// 0): the Metal decode has no attention over a cache yet.
fn decode(suite: Suite) -> Vec<KernelSpec> {
    pick(suite, &[1], &[1, 4, 16], &[1, 2, 4, 8, 16])
        .into_iter()
        .map(|batch| KernelSpec::Decode {
            batch,
            layers: LayerShape::MISTRAL_7B_LAYERS,
            shape: LayerShape::MISTRAL_7B,
            context: 0,
            dtype: Dtype::F16,
        })
        .collect()
}

/// One fixed size on every Mac, so sweeps compare across machines configuration by
/// configuration: 128 Mi f32 elements, 512 MiB per array, ≥ 4× the largest cache bound in
/// `hardware.rs`, so at low FMA counts the sweep is bound by memory, not by the cache.
const SWEEP_ELEMENTS: u64 = 128 * MIB;

fn intensity_sweep(suite: Suite) -> Vec<KernelSpec> {
    let fmas = pick(
        suite,
        &[1, 16, 256],
        &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
        &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    );
    fmas.into_iter()
        .map(|fmas_per_element| KernelSpec::IntensitySweep {
            elements: SWEEP_ELEMENTS,
            fmas_per_element,
            dtype: Dtype::F32,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::system_level_cache_bytes;

    fn profiles() -> Vec<Profile> {
        [
            "Apple M1",
            "Apple M3 Pro",
            "Apple M2 Max",
            "Apple M1 Ultra",
            "Unknown GPU",
        ]
        .into_iter()
        .map(|name| Profile {
            last_level_cache_bytes: system_level_cache_bytes(name),
        })
        .collect()
    }

    #[test]
    fn bandwidth_arrays_are_at_least_four_times_the_cache() {
        for profile in profiles() {
            for suite in [Suite::Quick, Suite::Standard, Suite::Full] {
                let specs = configurations(profile, suite);
                let sizes: Vec<u64> = specs
                    .iter()
                    .filter_map(|s| match s {
                        KernelSpec::Bandwidth { array_bytes, .. } => Some(*array_bytes),
                        _ => None,
                    })
                    .collect();
                assert!(
                    !sizes.is_empty(),
                    "{suite:?} has no bandwidth configuration"
                );
                for bytes in sizes {
                    assert!(
                        bytes >= 4 * profile.last_level_cache_bytes,
                        "{bytes} in {suite:?}"
                    );
                    assert_eq!(bytes % 16, 0, "float4 kernels need 16-byte multiples");
                }
            }
        }
    }

    #[test]
    fn sweep_arrays_exceed_the_cache() {
        for profile in profiles() {
            for spec in configurations(profile, Suite::Full) {
                if let KernelSpec::IntensitySweep { elements, .. } = spec {
                    assert!(elements * 4 >= 4 * profile.last_level_cache_bytes);
                    assert_eq!(elements % 4, 0, "float4 kernels need multiples of 4");
                }
            }
        }
    }

    #[test]
    fn suites_grow_and_cover_every_family() {
        let profile = profiles()[2];
        let quick = configurations(profile, Suite::Quick);
        let standard = configurations(profile, Suite::Standard);
        let full = configurations(profile, Suite::Full);
        assert!(quick.len() < standard.len() && standard.len() < full.len());
        for specs in [&quick, &standard, &full] {
            let mut families: Vec<&str> = specs.iter().map(|s| s.family().name()).collect();
            families.dedup();
            assert_eq!(
                families,
                [
                    "gemm",
                    "bandwidth",
                    "attention",
                    "layer",
                    "decode",
                    "intensity_sweep",
                    "interconnect"
                ]
            );
        }
        for spec in &standard {
            if let KernelSpec::Gemm { m, .. } = spec {
                assert!((512..=8192).contains(m));
            }
        }
        // The standard suite sweeps f = 1..1024 in powers of two.
        let fmas: Vec<u64> = standard
            .iter()
            .filter_map(|s| match s {
                KernelSpec::IntensitySweep {
                    fmas_per_element, ..
                } => Some(*fmas_per_element),
                _ => None,
            })
            .collect();
        assert_eq!(fmas.first(), Some(&1));
        assert_eq!(fmas.last(), Some(&1024));
    }

    #[test]
    fn rotation_covers_four_times_the_cache() {
        assert_eq!(buffer_sets(GIB, 64 * MIB), 1);
        // 6 × 100 MiB ≥ 4 × 128 MiB > 5 × 100 MiB.
        assert_eq!(buffer_sets(100 * MIB, 128 * MIB), 6);
        assert_eq!(buffer_sets(1, 1 << 40), MAX_BUFFER_SETS);
    }

    #[test]
    fn configurations_are_unique() {
        let mut specs = configurations(profiles()[0], Suite::Full);
        let total = specs.len();
        specs.sort();
        specs.dedup();
        assert_eq!(specs.len(), total);
    }
}
