// Seeded random fill on the GPU, so multi-gigabyte inputs (decode weights, bandwidth arrays)
// are ready in milliseconds instead of seconds of CPU work. Values are non-zero by
// construction: magnitude in [0.25, 1] · scale with a random sign, so no kernel can pass
// verification by returning zeros.
#include <metal_stdlib>
using namespace metal;

struct FillParams {
    uint count;
    uint seed_low;
    uint seed_high;
    float scale;
};

// A 32-bit integer mixer (xorshift-multiply rounds): consecutive indices give uncorrelated
// bits, which is all a benchmark input needs.
static inline uint mix_bits(uint x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static inline float random_value(uint index, constant FillParams& p) {
    const uint stream = mix_bits(p.seed_low ^ mix_bits(p.seed_high ^ 0x9e3779b9u));
    const uint bits = mix_bits(index ^ stream);
    // 23 bits of mantissa-sized fraction in [0, 1).
    const float unit = float(bits >> 9) * (1.0f / 8388608.0f);
    const float magnitude = 0.25f + 0.75f * unit;
    return (bits & 1u) ? -magnitude * p.scale : magnitude * p.scale;
}

kernel void fill_random_f32(device float* out [[buffer(0)]],
                            constant FillParams& p [[buffer(1)]],
                            uint index [[thread_position_in_grid]]) {
    if (index < p.count) {
        out[index] = random_value(index, p);
    }
}

kernel void fill_random_f16(device half* out [[buffer(0)]],
                            constant FillParams& p [[buffer(1)]],
                            uint index [[thread_position_in_grid]]) {
    if (index < p.count) {
        out[index] = half(random_value(index, p));
    }
}

// bf16 written as raw bits (the upper half of the f32, round-to-nearest-even), so this source
// compiles on macOS versions whose Metal language has no `bfloat` type.
kernel void fill_random_bf16(device ushort* out [[buffer(0)]],
                             constant FillParams& p [[buffer(1)]],
                             uint index [[thread_position_in_grid]]) {
    if (index < p.count) {
        const uint bits = as_type<uint>(random_value(index, p));
        const uint rounding = 0x7fffu + ((bits >> 16) & 1u);
        out[index] = ushort((bits + rounding) >> 16);
    }
}
