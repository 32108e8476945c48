//! End-to-end tests on a real Metal device (macOS only): every kernel family, at small sizes,
//! through the same harness `silirep measure` uses, must verify and produce timings.

use super::MetalBackend;
use silirep_core::harness::{StoppingRule, measure};
use silirep_core::schema::VerificationStatus;
use silirep_core::{
    AttentionImpl, Backend, BandwidthOp, Dtype, KernelSpec, LayerPart, LayerShape, Pass, Suite,
};
use std::sync::atomic::AtomicBool;

const SMALL_LAYER: LayerShape = LayerShape {
    hidden: 256,
    heads: 4,
    kv_heads: 2,
    head_dim: 64,
    intermediate: 512,
};

fn rule() -> StoppingRule {
    StoppingRule {
        target_relative_ci: 0.05,
        max_time_s: 0.2,
        min_samples: 6,
        max_samples: 50,
        warmup_iterations: 2,
        warmup_time_s: 0.0,
    }
}

fn assert_measures(backend: &mut MetalBackend, spec: KernelSpec) {
    let m = measure(backend, &spec, &rule(), 7, &AtomicBool::new(false));
    assert!(
        m.error.is_none(),
        "{spec:?}: {:?} ({:?})",
        m.error,
        m.verification
    );
    assert_eq!(
        m.verification.status,
        VerificationStatus::Passed,
        "{spec:?}: {:?}",
        m.verification
    );
    assert!(
        !m.samples_s.is_empty() && m.samples_s.iter().all(|t| *t > 0.0),
        "{spec:?}"
    );
}

#[test]
fn every_kernel_family_verifies_at_small_sizes() {
    let mut backend = MetalBackend::open().expect("a Mac has a Metal device");
    let mut specs = Vec::new();
    for dtype in [Dtype::F32, Dtype::F16] {
        specs.push(KernelSpec::Gemm {
            m: 256,
            n: 192,
            k: 320,
            dtype,
        });
        for implementation in [AttentionImpl::Naive, AttentionImpl::Fused] {
            specs.push(KernelSpec::Attention {
                implementation,
                batch: 2,
                heads: 3,
                seq_len: 200,
                head_dim: 64,
                dtype,
                causal: false,
            });
        }
        for pass in [Pass::Forward, Pass::Backward] {
            specs.push(KernelSpec::Layer {
                pass,
                part: LayerPart::Full,
                batch: 2,
                seq_len: 48,
                shape: SMALL_LAYER,
                dtype,
            });
        }
        for batch in [1, 3] {
            specs.push(KernelSpec::Decode {
                batch,
                layers: 3,
                shape: SMALL_LAYER,
                context: 0,
                dtype,
            });
        }
    }
    for op in BandwidthOp::ALL {
        // 16 MiB: small enough that the backend must rotate buffer sets.
        specs.push(KernelSpec::Bandwidth {
            op,
            array_bytes: 16 << 20,
            dtype: Dtype::F32,
        });
    }
    specs.push(KernelSpec::IntensitySweep {
        elements: 1 << 20,
        fmas_per_element: 64,
        dtype: Dtype::F32,
    });
    for spec in specs {
        assert_measures(&mut backend, spec);
    }
}

#[test]
fn device_facts_and_suite_are_filled_in() {
    let backend = MetalBackend::open().expect("a Mac has a Metal device");
    assert_eq!(backend.name(), "metal");
    let accelerator = backend.accelerator().expect("a GPU");
    assert_eq!(accelerator.vendor, "Apple");
    assert!(!accelerator.name.is_empty());
    assert!(backend.memory_bytes().unwrap() > 0);
    assert!(!backend.suite(Suite::Quick).is_empty());
}

#[test]
fn unsupported_configurations_say_why() {
    let mut backend = MetalBackend::open().expect("a Mac has a Metal device");
    let spec = KernelSpec::Gemm {
        m: 64,
        n: 64,
        k: 64,
        dtype: Dtype::Bf16,
    };
    let m = measure(&mut backend, &spec, &rule(), 1, &AtomicBool::new(false));
    let error = m.error.expect("bf16 GEMM is unsupported");
    assert!(error.message.contains("bf16"), "{}", error.message);
    assert!(m.samples_s.is_empty());
}
