//! The seed data's own question, through the public API only: Mistral-7B f16, an 871-token
//! prompt and 256 new tokens, prefill on the Apple M5 (the faster trainer) and decode on the
//! Apple M4 Pro (the faster decoder) over Thunderbolt. Does splitting pay?
//!
//! Inputs are measurements, not guesses: the f16 roofs are the ones `silirep report` fits to
//! the seed results (README, "Worked example": M5 13.8 TFLOP/s and 119 GB/s, M4 Pro
//! 6.08 TFLOP/s and 253 GB/s) and the link is the ~37.6 Gbit/s measured over the two
//! machines' Thunderbolt connection (issue 13); its latency was not measured and is taken as 0,
//! which for one 114 MB message changes nothing visible. The assertions check what follows
//! from those inputs by hand (comments), and `docs/model.md` quotes the printed plan.

use silirep_core::Dtype;
use silirep_model::{
    BandwidthBreakEven, Link, MachineRoofs, ModelShape, Placement, PromptBreakEven, Request, Roof,
    RoofKind, RoofSource, break_even_link_bandwidth, break_even_prompt_tokens, plan_disaggregation,
};

fn machine(name: &str, f16_flops: f64, bandwidth: f64) -> MachineRoofs {
    MachineRoofs {
        machine: name.into(),
        roofs: vec![
            Roof {
                kind: RoofKind::Compute {
                    precision: Dtype::F16,
                },
                rate: f16_flops,
                source: RoofSource::Measured {
                    what: "roofline fit of the seed results (README)".into(),
                },
            },
            Roof {
                kind: RoofKind::Memory,
                rate: bandwidth,
                source: RoofSource::Measured {
                    what: "roofline fit of the seed results (README)".into(),
                },
            },
        ],
    }
}

#[test]
fn seed_disaggregation_at_the_roofs() {
    let shape = ModelShape::mistral_7b();
    let m5 = machine("Apple M5", 13.8e12, 119e9);
    let m4_pro = machine("Apple M4 Pro", 6.08e12, 253e9);
    let thunderbolt = Link {
        name: "thunderbolt".into(),
        bandwidth_bytes_per_s: 37.6e9 / 8.0,
        latency_s: 0.0,
        source: RoofSource::Measured {
            what: "Thunderbolt between the seed machines, ~37.6 Gbit/s".into(),
        },
    };
    let request = Request {
        batch: 1,
        prompt_tokens: 871,
        output_tokens: 256,
    };
    let plan = plan_disaggregation(&shape, &m5, &m4_pro, &thunderbolt, request).unwrap();
    println!("{}", serde_json::to_string_pretty(&plan).unwrap());

    let [m5_alone, m4_alone, m5_then_m4, _] = &plan.options[..] else {
        panic!("four options expected");
    };
    // KV of 871 tokens: 114,163,712 bytes (108.875 MiB, the seed's own `kv_size_mb`),
    // over 4.7e9 bytes/s: 24.29 ms.
    assert_eq!(m5_then_m4.kv_transfer_bytes, 114_163_712.0);
    assert!((m5_then_m4.kv_transfer_s - 0.024_290_151_489_361_7).abs() < 1e-12);
    // Prefill is compute-bound on both: 12,357,080,186,880 FLOPs / 13.8e12 = 0.8954 s on the
    // M5, / 6.08e12 = 2.0324 s on the M4 Pro.
    assert!((m5_alone.prefill.time_s - 12_357_080_186_880.0 / 13.8e12).abs() < 1e-12);
    assert!((m4_alone.prefill.time_s - 12_357_080_186_880.0 / 6.08e12).abs() < 1e-12);
    // Decode is memory-bound on both (~14.3 GB per step): the M4 Pro decodes 253/119 = 2.13×
    // faster, so at the roofs the split (M5's prefill, M4 Pro's decode) beats both.
    assert!(matches!(
        m4_alone.first_decode_step.bound_by,
        RoofKind::Memory
    ));
    assert_eq!(
        plan.fastest_end_to_end,
        Placement::Split {
            prefill_on: "Apple M5".into(),
            decode_on: "Apple M4 Pro".into()
        }
    );
    // The split saves the prefill difference minus the transfer: 2.0324 − 0.8954 − 0.0243 s.
    let saving = m4_alone.end_to_end_s - m5_then_m4.end_to_end_s;
    let by_hand = 12_357_080_186_880.0 * (1.0 / 6.08e12 - 1.0 / 13.8e12) - 0.024_290_151_489_361_7;
    assert!((saving - by_hand).abs() < 1e-9);

    let bandwidth = break_even_link_bandwidth(&shape, &m5, &m4_pro, &thunderbolt, request).unwrap();
    println!("{}", serde_json::to_string_pretty(&bandwidth).unwrap());
    let BandwidthBreakEven::Above {
        bandwidth_bytes_per_s,
        ..
    } = bandwidth
    else {
        panic!("the split pays on a fast enough link: {bandwidth:?}");
    };
    // 114,163,712 bytes / (2.0324 − 0.8954 s) ≈ 100 MB/s
    let slack = 12_357_080_186_880.0 * (1.0 / 6.08e12 - 1.0 / 13.8e12);
    assert!((bandwidth_bytes_per_s - 114_163_712.0 / slack).abs() < 1e-3);

    let prompt =
        break_even_prompt_tokens(&shape, &m5, &m4_pro, &thunderbolt, 1, 256, 32_768).unwrap();
    println!("{}", serde_json::to_string_pretty(&prompt).unwrap());
    assert!(matches!(prompt, PromptBreakEven::From { .. }));
}
