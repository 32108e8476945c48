// Arithmetic-intensity sweep: every element is loaded once, run through a chain of
// `fmas_per_element` dependent multiply-adds and stored once, so FLOPs per byte rise with the
// chain length while traffic stays fixed. Each thread carries four independent chains (one
// float4), which gives the scheduler instruction-level parallelism without changing the count.
#include <metal_stdlib>
using namespace metal;

struct SweepParams {
    uint vector_count;     // float4 elements
    uint fmas_per_element;
    float multiplier;      // |multiplier| < 1 keeps the chain bounded: x → addend / (1 − multiplier)
    float addend;
};

kernel void intensity_sweep_f32(device const float4* input [[buffer(0)]],
                                device float4* output [[buffer(1)]],
                                constant SweepParams& p [[buffer(2)]],
                                uint i [[thread_position_in_grid]]) {
    if (i >= p.vector_count) {
        return;
    }
    float4 x = input[i];
    const float4 m = float4(p.multiplier);
    const float4 c = float4(p.addend);
    // The trip count is a run-time value, so the chain cannot be folded at compile time, and
    // fma() pins one fused multiply-add per step whatever the math mode.
    for (uint step = 0; step < p.fmas_per_element; ++step) {
        x = fma(x, m, c);
    }
    output[i] = x;
}
