// Elementwise and row-wise pieces of the decoder layer's backward pass (layer_backward.rs);
// its products are cuBLASLt GEMMs. Arithmetic is f32, storage f16/bf16, as in the forward.

// SwiGLU backward: act = silu(g)·u, so d_gate = d_act·u·σ(g)·(1 + g·(1 − σ(g))) and
// d_up = d_act·silu(g).
template <bool BF16>
__device__ void swiglu_backward(const u16* d_act, const u16* gate, const u16* up, u16* d_gate, u16* d_up, u64 n) {
    for (u64 i = grid_thread(); i < n; i += grid_stride()) {
        const float da = half_to_f32<BF16>(d_act[i]), g = half_to_f32<BF16>(gate[i]), u = half_to_f32<BF16>(up[i]);
        const float sig = 1.0f / (1.0f + __expf(-g));
        d_gate[i] = f32_to_half<BF16>(da * u * sig * (1.0f + g * (1.0f - sig)));
        d_up[i] = f32_to_half<BF16>(da * g * sig);
    }
}
extern "C" __global__ void swiglu_backward_f16(const u16* da, const u16* g, const u16* u, u16* dg, u16* du, u64 n) {
    swiglu_backward<false>(da, g, u, dg, du, n);
}
extern "C" __global__ void swiglu_backward_bf16(const u16* da, const u16* g, const u16* u, u16* dg, u16* du, u64 n) {
    swiglu_backward<true>(da, g, u, dg, du, n);
}

// RMSNorm backward plus the residual that bypasses the norm, one block per row:
// out = residual + r·dh − x·r³·(dh·x)/n with r = 1/√(mean(x²) + ε). `width` ≤ 8·256·4.
#define RMS_BW_CHUNKS 4
template <bool BF16>
__device__ void rms_norm_backward(const u16* x, const u16* dh, const u16* residual, u16* out, u32 width, float eps) {
    __shared__ float scratch[32];
    const u64 row = (u64)blockIdx.x * width;
    float xs[RMS_BW_CHUNKS][8], gs[RMS_BW_CHUNKS][8];
    float ss = 0.0f, xg = 0.0f;
#pragma unroll
    for (int c = 0; c < RMS_BW_CHUNKS; ++c) {
        const u32 idx = threadIdx.x + c * blockDim.x;
        if (idx < width / 8) {
            const uint4 rx = ((const uint4*)(x + row))[idx], rg = ((const uint4*)(dh + row))[idx];
            const u32 wx[4] = {rx.x, rx.y, rx.z, rx.w}, wg[4] = {rg.x, rg.y, rg.z, rg.w};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                xs[c][2 * e] = half_to_f32<BF16>((u16)(wx[e] & 0xffff));
                xs[c][2 * e + 1] = half_to_f32<BF16>((u16)(wx[e] >> 16));
                gs[c][2 * e] = half_to_f32<BF16>((u16)(wg[e] & 0xffff));
                gs[c][2 * e + 1] = half_to_f32<BF16>((u16)(wg[e] >> 16));
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                ss += xs[c][e] * xs[c][e];
                xg += xs[c][e] * gs[c][e];
            }
        }
    }
    ss = block_sum<float>(ss, scratch);
    xg = block_sum<float>(xg, scratch);
    const float r = rsqrtf(ss / (float)width + eps);
    const float k = r * r * r * xg / (float)width;
#pragma unroll
    for (int c = 0; c < RMS_BW_CHUNKS; ++c) {
        const u32 idx = threadIdx.x + c * blockDim.x;
        if (idx < width / 8) {
            const uint4 rr = ((const uint4*)(residual + row))[idx];
            const u32 wr[4] = {rr.x, rr.y, rr.z, rr.w};
            u32 w[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float lo = half_to_f32<BF16>((u16)(wr[e] & 0xffff)) + r * gs[c][2 * e] - xs[c][2 * e] * k;
                const float hi = half_to_f32<BF16>((u16)(wr[e] >> 16)) + r * gs[c][2 * e + 1] - xs[c][2 * e + 1] * k;
                w[e] = (u32)f32_to_half<BF16>(lo) | ((u32)f32_to_half<BF16>(hi) << 16);
            }
            ((uint4*)(out + row))[idx] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}
extern "C" __global__ void rms_norm_backward_f16(const u16* x, const u16* dh, const u16* res, u16* out, u32 width, float eps) {
    rms_norm_backward<false>(x, dh, res, out, width, eps);
}
extern "C" __global__ void rms_norm_backward_bf16(const u16* x, const u16* dh, const u16* res, u16* out, u32 width, float eps) {
    rms_norm_backward<true>(x, dh, res, out, width, eps);
}

// Softmax backward over rows of `cols` (one block per row, cols ≤ 8·blockDim·4):
// dS = P ⊙ (dP − Σ_j dP_j·P_j).
template <bool BF16> __device__ void softmax_backward(const u16* p, const u16* dp, u16* ds, u32 cols) {
    __shared__ float scratch[32];
    const u64 row = (u64)blockIdx.x * cols;
    float ps[RMS_BW_CHUNKS][8], gs[RMS_BW_CHUNKS][8];
    float dot = 0.0f;
#pragma unroll
    for (int c = 0; c < RMS_BW_CHUNKS; ++c) {
        const u32 idx = threadIdx.x + c * blockDim.x;
        if (idx < cols / 8) {
            const uint4 rp = ((const uint4*)(p + row))[idx], rg = ((const uint4*)(dp + row))[idx];
            const u32 wp[4] = {rp.x, rp.y, rp.z, rp.w}, wg[4] = {rg.x, rg.y, rg.z, rg.w};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                ps[c][2 * e] = half_to_f32<BF16>((u16)(wp[e] & 0xffff));
                ps[c][2 * e + 1] = half_to_f32<BF16>((u16)(wp[e] >> 16));
                gs[c][2 * e] = half_to_f32<BF16>((u16)(wg[e] & 0xffff));
                gs[c][2 * e + 1] = half_to_f32<BF16>((u16)(wg[e] >> 16));
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) dot += ps[c][e] * gs[c][e];
        }
    }
    dot = block_sum<float>(dot, scratch);
#pragma unroll
    for (int c = 0; c < RMS_BW_CHUNKS; ++c) {
        const u32 idx = threadIdx.x + c * blockDim.x;
        if (idx < cols / 8) {
            u32 w[4];
#pragma unroll
            for (int e = 0; e < 4; ++e)
                w[e] = (u32)f32_to_half<BF16>(ps[c][2 * e] * (gs[c][2 * e] - dot)) |
                       ((u32)f32_to_half<BF16>(ps[c][2 * e + 1] * (gs[c][2 * e + 1] - dot)) << 16);
            ((uint4*)(ds + row))[idx] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}
extern "C" __global__ void softmax_backward_f16(const u16* p, const u16* dp, u16* ds, u32 cols) {
    softmax_backward<false>(p, dp, ds, cols);
}
extern "C" __global__ void softmax_backward_bf16(const u16* p, const u16* dp, u16* ds, u32 cols) {
    softmax_backward<true>(p, dp, ds, cols);
}

// [tokens × src_heads·d] (the projections' layout) → [heads × tokens × d] (one contiguous matrix
// per head, for batched GEMMs). Query head h reads source head h / (heads / src_heads), so K and
// V are expanded to one copy per query head. One thread per 8 elements; d a multiple of 8.
extern "C" __global__ void to_heads(const u16* src, u16* dst, u32 tokens, u32 heads, u32 src_heads, u32 d) {
    const u64 chunks = (u64)heads * tokens * d / 8;
    const u32 group = heads / src_heads;
    for (u64 i = grid_thread(); i < chunks; i += grid_stride()) {
        const u64 e = i * 8;
        const u32 c = e % d;
        const u64 t = (e / d) % tokens;
        const u32 h = e / ((u64)d * tokens);
        ((uint4*)dst)[i] = *(const uint4*)(src + t * src_heads * d + (h / group) * d + c);
    }
}

// [heads × tokens × d] → [tokens × dst_heads·d], adding the `heads / dst_heads` consecutive
// heads that share a destination head (the gradients of grouped K and V).
template <bool BF16>
__device__ void from_heads_sum(const u16* src, u16* dst, u32 tokens, u32 heads, u32 dst_heads, u32 d) {
    const u64 n = (u64)dst_heads * tokens * d;
    const u32 group = heads / dst_heads;
    for (u64 i = grid_thread(); i < n; i += grid_stride()) {
        const u32 c = i % d;
        const u64 t = (i / d) % tokens;
        const u32 g = i / ((u64)d * tokens);
        float s = 0.0f;
        for (u32 j = 0; j < group; ++j) s += half_to_f32<BF16>(src[((u64)(g * group + j) * tokens + t) * d + c]);
        dst[t * dst_heads * d + (u64)g * d + c] = f32_to_half<BF16>(s);
    }
}
extern "C" __global__ void from_heads_sum_f16(const u16* src, u16* dst, u32 tokens, u32 heads, u32 dst_heads, u32 d) {
    from_heads_sum<false>(src, dst, tokens, heads, dst_heads, d);
}
extern "C" __global__ void from_heads_sum_bf16(const u16* src, u16* dst, u32 tokens, u32 heads, u32 dst_heads, u32 d) {
    from_heads_sum<true>(src, dst, tokens, heads, dst_heads, d);
}
