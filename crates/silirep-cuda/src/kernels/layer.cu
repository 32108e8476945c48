// Elementwise pieces of a decoder layer; its projections are cuBLASLt GEMMs and its attention
// the fused kernel. Arithmetic is f32, storage f16/bf16, as in mixed-precision frameworks.

#define LAYER_THREADS 256

// One block per row: y = x / sqrt(mean(x²) + eps). No gain vector (the CPU backend has none
// either, and a gain is one multiply that changes no traffic). `width` is a multiple of 8.
template <bool BF16> __device__ void rms_norm(const u16* x, u16* y, u32 width, float eps) {
    __shared__ float scratch[32];
    const uint4* in = (const uint4*)(x + (u64)blockIdx.x * width);
    uint4* out = (uint4*)(y + (u64)blockIdx.x * width);
    float ss = 0.0f;
    for (u32 c = threadIdx.x; c < width / 8; c += blockDim.x) {
        const uint4 raw = in[c];
        const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float a = half_to_f32<BF16>((u16)(w[e] & 0xffff)), b = half_to_f32<BF16>((u16)(w[e] >> 16));
            ss += a * a + b * b;
        }
    }
    ss = block_sum<float>(ss, scratch);
    const float inv = rsqrtf(ss / (float)width + eps);
    for (u32 c = threadIdx.x; c < width / 8; c += blockDim.x) {
        const uint4 raw = in[c];
        u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float a = half_to_f32<BF16>((u16)(w[e] & 0xffff)), b = half_to_f32<BF16>((u16)(w[e] >> 16));
            w[e] = (u32)f32_to_half<BF16>(a * inv) | ((u32)f32_to_half<BF16>(b * inv) << 16);
        }
        out[c] = make_uint4(w[0], w[1], w[2], w[3]);
    }
}
extern "C" __global__ void rms_norm_f16(const u16* x, u16* y, u32 width, float eps) { rms_norm<false>(x, y, width, eps); }
extern "C" __global__ void rms_norm_bf16(const u16* x, u16* y, u32 width, float eps) { rms_norm<true>(x, y, width, eps); }

// out = silu(gate) · up (SwiGLU)
template <bool BF16> __device__ void silu_mul(const u16* gate, const u16* up, u16* out, u64 n) {
    for (u64 i = grid_thread(); i < n; i += grid_stride()) {
        const float g = half_to_f32<BF16>(gate[i]);
        out[i] = f32_to_half<BF16>(g / (1.0f + __expf(-g)) * half_to_f32<BF16>(up[i]));
    }
}
extern "C" __global__ void silu_mul_f16(const u16* g, const u16* u, u16* o, u64 n) { silu_mul<false>(g, u, o, n); }
extern "C" __global__ void silu_mul_bf16(const u16* g, const u16* u, u16* o, u64 n) { silu_mul<true>(g, u, o, n); }

// Residual: out = a + b
template <bool BF16> __device__ void add(const u16* a, const u16* b, u16* out, u64 n) {
    for (u64 i = grid_thread(); i < n; i += grid_stride())
        out[i] = f32_to_half<BF16>(half_to_f32<BF16>(a[i]) + half_to_f32<BF16>(b[i]));
}
extern "C" __global__ void add_f16(const u16* a, const u16* b, u16* o, u64 n) { add<false>(a, b, o, n); }
extern "C" __global__ void add_bf16(const u16* a, const u16* b, u16* o, u64 n) { add<true>(a, b, o, n); }
