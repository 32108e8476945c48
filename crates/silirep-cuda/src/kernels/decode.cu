// One decode step of a Mistral-shaped layer stack at small batches (≤ DEC_MAX_BATCH tokens):
// five kernels per layer, each streaming one fused weight matrix once.
//
//   decode_qkv       x → rms(x)·[Wq;Wk;Wv]   q to a buffer, the new k and v into the KV cache
//   decode_attention q against the cached keys/values (flash-decoding, split over context)
//   decode_residual  x2 = x + Wo·attn         (the same kernel does y = x2 + Wd·act)
//   decode_swiglu    act = silu(rms(x2)·Wg)·(rms(x2)·Wu), gate/up rows interleaved in tiles
//
// RMSNorm has no gain vector, so it is a per-token scalar: the GEMV accumulates Σx² of the
// token it already reads and scales its dot products by 1/rms at the end. That removes the
// normalised copy of the activations (and its kernel) from every projection.
//
// The GEMVs run on the tensor cores (mma.m16n8k16, f32 accumulation): one warp multiplies a
// 16-row weight tile by up to 8 tokens, so a 16-byte weight load costs half an mma instead of
// eight conversions and multiply-adds, leaving the SM free to keep loads in flight. The
// dot product does not care about the order of k, so each lane feeds the mma fragments with
// the 8 consecutive columns it loaded in one 16-byte access (see gemv_tile), and the token
// vector is fed in the same order.
//
// Programmatic dependent launch: each GEMV issues its first weight loads (weights never
// depend on the previous kernel), and attention's early variant its first tile of cached keys
// and values (all rows but the newest), before `griddepcontrol.wait`, which returns once the
// previous kernel has finished and its writes are visible. Nothing is written before the
// wait. Launched without the attribute, the wait is a no-op.

#define DEC_THREADS 256
#define DEC_WARPS 8
// Each kernel comes in three depths U (decode_qkv2_f16, decode_qkv4_f16, decode_qkv8_f16, …): a warp's chunk is
// U 32-column steps, 2·U 16-byte weight loads in flight per lane; decode.rs picks per stage.
#define DEC_TILE 16
#define DEC_MAX_BATCH 8

__device__ __forceinline__ void griddep_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void griddep_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// Weights are read once per step and never written: no L1 allocation.
__device__ __forceinline__ uint4 load_weight(const u16* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}
// Activations were written by the previous kernel: read them through L2 (coherent).
__device__ __forceinline__ uint4 load_activation(const u16* p) {
    uint4 v;
    asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

template <bool BF16> __device__ __forceinline__ void mma16816(float c[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    if (BF16) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    } else {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
}

template <bool BF16> __device__ __forceinline__ float sum_squares(uint4 v) {
    const u32 w[4] = {v.x, v.y, v.z, v.w};
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const float a = half_to_f32<BF16>((u16)(w[e] & 0xffff)), b = half_to_f32<BF16>((u16)(w[e] >> 16));
        s += a * a + b * b;
    }
    return s;
}

// Result of one block's 16-row tile: lane (g, t) of warp 0 holds rows g and g+8 for tokens
// 2t and 2t+1 (the mma accumulator layout), and Σx² of those two tokens.
struct TileResult {
    float c[4];
    float ss[2];
};

// Weight layout (the GEMV path's own, written by the host as it fills the weights): each
// 16-row tile of W [rows×k] is stored as k/32 blocks of 1 KiB, one per 32-column step; a
// block holds rows 0–7 then rows 8–15, each half as 32 lanes × 8 columns in the order lane
// (g, t) reads them: row g, columns 8t…8t+7 of the step. So every warp load is 512
// contiguous bytes and a warp's chunk of U steps is U KiB in one run, the access pattern of
// a plain read kernel, where row-major rows would give 64-byte pieces of 8 rows 2k bytes
// apart. (`tiled_offset` in decode.rs is the same map; its tests hold the two together.)
//
// A block's tile `tile` is the 16 rows from 16·tile of W·xᵀ for `batch` tokens, x [batch×k]
// row-major. Warps split k into chunks of U steps (warp w takes chunks w, w+8, …), then the
// 8 partial tiles are summed through shared memory. Lane (g, t) holds the 8 columns from
// 32s + 8t of rows g and g+8 and of token g; the two mmas of step s take those 8 columns as
// their k = {2t, 2t+1, 2t+8, 2t+9} of two k-tiles, in the same order for weights and tokens,
// so every product pairs the right column.
template <bool BF16, int U>
__device__ __forceinline__ TileResult gemv_tile(u32 tile, const u16* __restrict__ w, const u16* __restrict__ x, u32 k, u32 batch, bool norm) {
    __shared__ float part[DEC_WARPS][32][4];
    __shared__ float part_ss[DEC_WARPS][32];
    const u32 warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const u16* wt = w + (u64)tile * DEC_TILE * k + 8 * lane;
    const bool has_token = g < batch;
    const u16* xr = x + (u64)(has_token ? g : 0) * k + 8 * t;
    const u32 chunks = k / (32 * U);

    // Two accumulator sets halve the chain of dependent mmas per chunk.
    float c[4] = {0.0f, 0.0f, 0.0f, 0.0f}, d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float ss = 0.0f;
    // A chunk's weights (lo, hi) and the tokens' matching columns (xv) are loaded together,
    // one chunk ahead of their use, so all of a chunk's loads are in flight at once. Loading
    // the activations at the top of each chunk instead let ptxas put the first mmas (and the
    // folded norm's arithmetic) between them: the warp then waited on one L2 round trip
    // before issuing the rest, and the same QKV and gate/up grids ran 1.8 and 2.8 µs per layer
    // slower (docs/PERFORMANCE.md).
    uint4 lo[U], hi[U], xv[U];
    auto load_weights = [&](u32 ch) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
            lo[u] = load_weight(wt + (u64)(ch * U + u) * 512);
            hi[u] = load_weight(wt + (u64)(ch * U + u) * 512 + 256);
        }
    };
    auto load_tokens = [&](u32 ch) {
#pragma unroll
        for (int u = 0; u < U; ++u) xv[u] = has_token ? load_activation(xr + (u64)(ch * U + u) * 32) : make_uint4(0, 0, 0, 0);
    };
    u32 chunk = warp;
    if (chunk < chunks) load_weights(chunk);
    // Everything above reads weights only; activations are the previous kernel's output.
    griddep_wait();
    griddep_launch_dependents();
    if (chunk < chunks) load_tokens(chunk);
    while (chunk < chunks) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
            mma16816<BF16>(c, lo[u].x, hi[u].x, lo[u].y, hi[u].y, xv[u].x, xv[u].y);
            mma16816<BF16>(d, lo[u].z, hi[u].z, lo[u].w, hi[u].w, xv[u].z, xv[u].w);
            if (norm) ss += sum_squares<BF16>(xv[u]);
        }
        chunk += DEC_WARPS;
        if (chunk < chunks) {
            load_weights(chunk);
            load_tokens(chunk);
        }
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) part[warp][lane][e] = c[e] + d[e];
    part_ss[warp][lane] = ss;
    __syncthreads();
    TileResult r;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        float s = 0.0f;
#pragma unroll
        for (int v = 0; v < DEC_WARPS; ++v) s += part[v][lane][e];
        r.c[e] = s;
    }
    // Σx² of token n sits in lanes 4n…4n+3 of every warp.
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const u32 n = 2 * t + j;
        float s = 0.0f;
        if (norm && n < batch) {
#pragma unroll
            for (int v = 0; v < DEC_WARPS; ++v)
                for (int q = 0; q < 4; ++q) s += part_ss[v][4 * n + q];
        }
        r.ss[j] = s;
    }
    // The next tile of a block rewrites `part`.
    __syncthreads();
    return r;
}

__device__ __forceinline__ float rms_scale(float ss, u32 k, float eps) { return rsqrtf(ss / (float)k + eps); }

// The first qd rows are the query, the next kvd the new key, the last kvd the new value; the
// key and value go straight into slot `pos` of the cache [batch][kv_heads][slots][head_dim].
template <bool BF16, int U>
__device__ void decode_qkv(const u16* __restrict__ w, const u16* __restrict__ x, u32 k, u32 batch, float eps, u16* __restrict__ q,
                           u16* __restrict__ kcache, u16* __restrict__ vcache, u32 qd, u32 kvd, u32 head_dim, u32 slots, u32 pos) {
    const u32 tiles = (qd + 2 * kvd) / DEC_TILE;
    for (u32 tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const TileResult r = gemv_tile<BF16, U>(tile, w, x, k, batch, true);
        if (threadIdx.x >= 32) continue;
        const u32 lane = threadIdx.x, g = lane / 4, t = lane % 4;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const u32 n = 2 * t + j;
            if (n >= batch) continue;
            const float inv = rms_scale(r.ss[j], k, eps);
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const u32 row = tile * DEC_TILE + g + 8 * half;
                const u16 v = f32_to_half<BF16>(r.c[2 * half + j] * inv);
                if (row < qd) {
                    q[(u64)n * qd + row] = v;
                } else {
                    const u32 rr = row < qd + kvd ? row - qd : row - qd - kvd;
                    u16* cache = row < qd + kvd ? kcache : vcache;
                    const u32 head = rr / head_dim, d = rr % head_dim;
                    cache[(((u64)n * (kvd / head_dim) + head) * slots + pos) * head_dim + d] = v;
                }
            }
        }
    }
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_qkv2_f16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* q, u16* kc, u16* vc, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_qkv<false, 2>(w, x, k, batch, eps, q, kc, vc, qd, kvd, hd, slots, pos);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_qkv2_bf16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* q, u16* kc, u16* vc, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_qkv<true, 2>(w, x, k, batch, eps, q, kc, vc, qd, kvd, hd, slots, pos);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_qkv4_f16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* q, u16* kc, u16* vc, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_qkv<false, 4>(w, x, k, batch, eps, q, kc, vc, qd, kvd, hd, slots, pos);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_qkv4_bf16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* q, u16* kc, u16* vc, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_qkv<true, 4>(w, x, k, batch, eps, q, kc, vc, qd, kvd, hd, slots, pos);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_qkv8_f16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* q, u16* kc, u16* vc, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_qkv<false, 8>(w, x, k, batch, eps, q, kc, vc, qd, kvd, hd, slots, pos);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_qkv8_bf16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* q, u16* kc, u16* vc, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_qkv<true, 8>(w, x, k, batch, eps, q, kc, vc, qd, kvd, hd, slots, pos);
}

// out = residual + W·x, rows wide (the output projection and the down projection).
template <bool BF16, int U>
__device__ void decode_residual(const u16* __restrict__ w, const u16* __restrict__ x, u32 k, u32 batch, const u16* __restrict__ residual,
                                u16* __restrict__ out, u32 rows) {
    for (u32 tile = blockIdx.x; tile < rows / DEC_TILE; tile += gridDim.x) {
        const TileResult r = gemv_tile<BF16, U>(tile, w, x, k, batch, false);
        if (threadIdx.x >= 32) continue;
        const u32 lane = threadIdx.x, g = lane / 4, t = lane % 4;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const u32 n = 2 * t + j;
            if (n >= batch) continue;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const u64 i = (u64)n * rows + tile * DEC_TILE + g + 8 * half;
                out[i] = f32_to_half<BF16>(half_to_f32<BF16>(residual[i]) + r.c[2 * half + j]);
            }
        }
    }
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_residual2_f16(const u16* w, const u16* x, u32 k, u32 batch, const u16* residual, u16* out, u32 rows) {
    decode_residual<false, 2>(w, x, k, batch, residual, out, rows);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_residual2_bf16(const u16* w, const u16* x, u32 k, u32 batch, const u16* residual, u16* out, u32 rows) {
    decode_residual<true, 2>(w, x, k, batch, residual, out, rows);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_residual4_f16(const u16* w, const u16* x, u32 k, u32 batch, const u16* residual, u16* out, u32 rows) {
    decode_residual<false, 4>(w, x, k, batch, residual, out, rows);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_residual4_bf16(const u16* w, const u16* x, u32 k, u32 batch, const u16* residual, u16* out, u32 rows) {
    decode_residual<true, 4>(w, x, k, batch, residual, out, rows);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_residual8_f16(const u16* w, const u16* x, u32 k, u32 batch, const u16* residual, u16* out, u32 rows) {
    decode_residual<false, 8>(w, x, k, batch, residual, out, rows);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_residual8_bf16(const u16* w, const u16* x, u32 k, u32 batch, const u16* residual, u16* out, u32 rows) {
    decode_residual<true, 8>(w, x, k, batch, residual, out, rows);
}

// Gate and up rows interleaved in 16-row tiles: rows 16j…16j+7 are gate 8j…8j+7, rows
// 16j+8…16j+15 are up 8j…8j+7, so one lane holds gate i and up i (accumulator rows g, g+8).
template <bool BF16, int U>
__device__ void decode_swiglu(const u16* __restrict__ w, const u16* __restrict__ x, u32 k, u32 batch, float eps, u16* __restrict__ out,
                              u32 intermediate) {
    for (u32 tile = blockIdx.x; tile < 2 * intermediate / DEC_TILE; tile += gridDim.x) {
        const TileResult r = gemv_tile<BF16, U>(tile, w, x, k, batch, true);
        if (threadIdx.x >= 32) continue;
        const u32 lane = threadIdx.x, g = lane / 4, t = lane % 4;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const u32 n = 2 * t + j;
            if (n >= batch) continue;
            const float inv = rms_scale(r.ss[j], k, eps);
            const float gate = r.c[j] * inv, up = r.c[2 + j] * inv;
            out[(u64)n * intermediate + tile * (DEC_TILE / 2) + g] = f32_to_half<BF16>(gate / (1.0f + __expf(-gate)) * up);
        }
    }
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_swiglu2_f16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* out, u32 inter) {
    decode_swiglu<false, 2>(w, x, k, batch, eps, out, inter);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_swiglu2_bf16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* out, u32 inter) {
    decode_swiglu<true, 2>(w, x, k, batch, eps, out, inter);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_swiglu4_f16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* out, u32 inter) {
    decode_swiglu<false, 4>(w, x, k, batch, eps, out, inter);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_swiglu4_bf16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* out, u32 inter) {
    decode_swiglu<true, 4>(w, x, k, batch, eps, out, inter);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_swiglu8_f16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* out, u32 inter) {
    decode_swiglu<false, 8>(w, x, k, batch, eps, out, inter);
}
extern "C" __global__ void __launch_bounds__(DEC_THREADS) decode_swiglu8_bf16(const u16* w, const u16* x, u32 k, u32 batch, float eps, u16* out, u32 inter) {
    decode_swiglu<true, 8>(w, x, k, batch, eps, out, inter);
}

// ---------------------------------------------------------------------------------------
// Attention of each token's query over its sequence's cached keys and values (the new token's
// own key and value already in the last slot). Flash-decoding: block (split, kv head, token)
// covers `chunk` positions of one KV head for its DEC_GROUP query heads, with an online
// softmax over 64-position tiles; the last block of a (token, kv head) to finish merges the
// splits' partial outputs (a counter per pair, reset by that block for the next launch).

#define ATT_HEAD_DIM 128
#define ATT_GROUP 4
#define ATT_TILE 64
#define ATT_THREADS 128
// The most splits one (token, KV head) may have: the merge keeps every split's (m, l) of the
// group in shared memory (decode.rs caps the split count at this).
#define ATT_MAX_SPLITS 128

template <bool BF16, bool EARLY>
__device__ void decode_attention(const u16* __restrict__ q, u32 q_stride, const u16* __restrict__ kcache, const u16* __restrict__ vcache,
                                 u16* __restrict__ out, float* __restrict__ partial, u32* __restrict__ counters, u32 context, u32 chunk,
                                 float scale_log2) {
    __shared__ float p[ATT_GROUP][ATT_TILE];
    __shared__ float alpha[ATT_GROUP];
    __shared__ float run_m[ATT_GROUP], run_l[ATT_GROUP];
    __shared__ float red[ATT_GROUP][ATT_GROUP][ATT_HEAD_DIM];
    __shared__ bool last;
    __shared__ float merge_ml[ATT_MAX_SPLITS * 2 * ATT_GROUP];
    const u32 split = blockIdx.x, splits = gridDim.x, kvh = blockIdx.y, kv_heads = gridDim.y, token = blockIdx.z;
    const u32 tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const u64 seq = ((u64)token * kv_heads + kvh) * context;  // first cache row of this (token, kv head)
    const u32 start = split * chunk, end = min(context, start + chunk);

    // Logit phase: 8 threads per position, each 16 dims; its slice of the 4 queries stays in
    // registers for the whole kernel.
    const u32 pos_in_pass = tid / 8, dslice = (tid % 8) * 16;
    float qr[ATT_GROUP][16];
    // Value phase: thread owns 8 dims and every 8th position of a tile.
    const u32 vd = (tid % 16) * 8, vj = tid / 16;
    float acc[ATT_GROUP][8];
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[h][e] = 0.0f;

    // A tile's key and value loads all go out before any is used (16 per thread in flight),
    // so the value rows arrive while the logits and the softmax are computed; rows past the
    // end read as zeros (their probability is 0).
    //
    // EARLY: every cached row but the newest (`context - 1`, which this step's QKV kernel
    // writes) was written by an earlier step, so the block's first tile, all but that row, is
    // requested before the wait and its HBM round trip overlaps the QKV kernel's tail; the
    // newest row is read after the wait. Holding the tile while the query is loaded takes 219
    // registers per thread instead of 167, which costs occupancy where attention is many
    // blocks deep (batch 64: 100 instead of 88 µs per layer), so decode.rs offers this
    // variant only with programmatic dependent launch (batches ≤ 8) and keeps it if the step
    // is faster.
    const u32 newest = context - 1;
    uint4 kraw[ATT_TILE / 16][2], vraw[ATT_TILE / 8];
    // `skip`: a row to leave as zeros (the newest, before the wait), or none (~0u).
    auto load_tile = [&](u32 j0, u32 skip) {
#pragma unroll
        for (int pass = 0; pass < ATT_TILE / 16; ++pass) {
            const u32 j = j0 + pass * 16 + pos_in_pass;
            const bool ok = j < end && j != skip;
            const u16* kr = kcache + (seq + j) * ATT_HEAD_DIM + dslice;
#pragma unroll
            for (int v = 0; v < 2; ++v) kraw[pass][v] = ok ? load_activation(kr + 8 * v) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int i = 0; i < ATT_TILE / 8; ++i) {
            const u32 j = j0 + vj + 8 * i;
            const bool ok = j < end && j != skip;
            vraw[i] = ok ? load_activation(vcache + (seq + j) * ATT_HEAD_DIM + vd) : make_uint4(0, 0, 0, 0);
        }
    };
    if (EARLY) load_tile(start, newest);
    griddep_wait();
    griddep_launch_dependents();
    if (EARLY && newest >= start && newest < min(end, start + ATT_TILE)) {
        // The thread slots that hold the newest row, if this tile has it.
#pragma unroll
        for (int pass = 0; pass < ATT_TILE / 16; ++pass)
            if (start + pass * 16 + pos_in_pass == newest) {
                const u16* kr = kcache + (seq + newest) * ATT_HEAD_DIM + dslice;
#pragma unroll
                for (int v = 0; v < 2; ++v) kraw[pass][v] = load_activation(kr + 8 * v);
            }
#pragma unroll
        for (int i = 0; i < ATT_TILE / 8; ++i)
            if (start + vj + 8 * i == newest) vraw[i] = load_activation(vcache + (seq + newest) * ATT_HEAD_DIM + vd);
    }
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h) {
        const u16* qh = q + (u64)token * q_stride + (u64)(kvh * ATT_GROUP + h) * ATT_HEAD_DIM + dslice;
#pragma unroll
        for (int v = 0; v < 2; ++v) {
            const uint4 raw = load_activation(qh + 8 * v);
            const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                qr[h][8 * v + 2 * e] = half_to_f32<BF16>((u16)(w[e] & 0xffff)) * scale_log2;
                qr[h][8 * v + 2 * e + 1] = half_to_f32<BF16>((u16)(w[e] >> 16)) * scale_log2;
            }
        }
    }
    if (tid < ATT_GROUP) {
        run_m[tid] = negative_infinity();
        run_l[tid] = 0.0f;
    }
    for (u32 j0 = start; j0 < end; j0 += ATT_TILE) {
        if (j0 != start || !EARLY) load_tile(j0, ~0u);
#pragma unroll
        for (int pass = 0; pass < ATT_TILE / 16; ++pass) {
            const u32 jj = pass * 16 + pos_in_pass, j = j0 + jj;
            float s[ATT_GROUP] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int v = 0; v < 2; ++v) {
                const uint4 raw = kraw[pass][v];
                const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const float a = half_to_f32<BF16>((u16)(w[e] & 0xffff)), b = half_to_f32<BF16>((u16)(w[e] >> 16));
#pragma unroll
                    for (int h = 0; h < ATT_GROUP; ++h) s[h] += qr[h][8 * v + 2 * e] * a + qr[h][8 * v + 2 * e + 1] * b;
                }
            }
#pragma unroll
            for (int h = 0; h < ATT_GROUP; ++h) {
#pragma unroll
                for (int o = 4; o > 0; o >>= 1) s[h] += __shfl_xor_sync(0xffffffffu, s[h], o);
            }
            if (tid % 8 == 0) {
#pragma unroll
                for (int h = 0; h < ATT_GROUP; ++h) p[h][jj] = j < end ? s[h] : negative_infinity();
            }
        }
        __syncthreads();
        // Online softmax, one warp per query head (base 2: the logits carry log2 e).
        {
            const u32 h = warp;
            const float s0 = p[h][lane], s1 = p[h][lane + 32];
            float m = fmaxf(s0, s1);
            for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
            const float m_new = fmaxf(run_m[h], m);
            const float e0 = fast_exp2(s0 - m_new), e1 = fast_exp2(s1 - m_new);
            float l = e0 + e1;
            for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
            p[h][lane] = e0;
            p[h][lane + 32] = e1;
            __syncwarp();
            if (lane == 0) {
                const float a = fast_exp2(run_m[h] - m_new);
                alpha[h] = a;
                run_l[h] = run_l[h] * a + l;
                run_m[h] = m_new;
            }
        }
        __syncthreads();
#pragma unroll
        for (int h = 0; h < ATT_GROUP; ++h) {
            const float a = alpha[h];
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[h][e] *= a;
        }
#pragma unroll
        for (int i = 0; i < ATT_TILE / 8; ++i) {
            const u32 jj = vj + 8 * i;
            const uint4 raw = vraw[i];
            const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
            float pv[ATT_GROUP];
#pragma unroll
            for (int h = 0; h < ATT_GROUP; ++h) pv[h] = p[h][jj];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float a = half_to_f32<BF16>((u16)(w[e] & 0xffff)), b = half_to_f32<BF16>((u16)(w[e] >> 16));
#pragma unroll
                for (int h = 0; h < ATT_GROUP; ++h) {
                    acc[h][2 * e] += pv[h] * a;
                    acc[h][2 * e + 1] += pv[h] * b;
                }
            }
        }
        __syncthreads();
    }
    // Sum the 8 position groups: lanes 16 apart within a warp, then the 4 warps.
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[h][e] += __shfl_xor_sync(0xffffffffu, acc[h][e], 16);
    if (lane < 16) {
#pragma unroll
        for (int h = 0; h < ATT_GROUP; ++h)
#pragma unroll
            for (int e = 0; e < 8; ++e) red[warp][h][vd + e] = acc[h][e];
    }
    __syncthreads();
    // Thread tid finishes dim tid of every head.
    float o[ATT_GROUP];
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h) o[h] = red[0][h][tid] + red[1][h][tid] + red[2][h][tid] + red[3][h][tid];
    const u64 pair = (u64)token * kv_heads + kvh;
    u16* out_row = out + (u64)token * (kv_heads * ATT_GROUP * ATT_HEAD_DIM) + (u64)kvh * ATT_GROUP * ATT_HEAD_DIM;
    if (splits == 1) {
#pragma unroll
        for (int h = 0; h < ATT_GROUP; ++h) out_row[h * ATT_HEAD_DIM + tid] = f32_to_half<BF16>(o[h] / run_l[h]);
        return;
    }
    // Partial: [pair][split] × (ATT_GROUP·HEAD_DIM outputs, then m and l of each head).
    const u32 stride = ATT_GROUP * ATT_HEAD_DIM + 2 * ATT_GROUP;
    float* mine = partial + (pair * splits + split) * stride;
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h) mine[h * ATT_HEAD_DIM + tid] = o[h];
    if (tid < ATT_GROUP) {
        mine[ATT_GROUP * ATT_HEAD_DIM + 2 * tid] = run_m[tid];
        mine[ATT_GROUP * ATT_HEAD_DIM + 2 * tid + 1] = run_l[tid];
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        const u32 done = atomicAdd(&counters[pair], 1u);
        last = done == splits - 1;
        if (last) counters[pair] = 0;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    // The merge. Every split's (m, l) of the four heads comes into shared memory in one round
    // of independent loads (one per thread per 128 values), and the partial outputs are loaded
    // eight splits at a time before any is used: a chain of dependent L2 round trips here cost
    // most of batch 1's 12 µs per layer.
    const float* all = partial + pair * splits * stride;
    for (u32 i = tid; i < splits * 2 * ATT_GROUP; i += ATT_THREADS)
        merge_ml[i] = __ldcg(all + (i / (2 * ATT_GROUP)) * stride + ATT_GROUP * ATT_HEAD_DIM + i % (2 * ATT_GROUP));
    __syncthreads();
    float m[ATT_GROUP], num[ATT_GROUP], den[ATT_GROUP];
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h) {
        m[h] = negative_infinity();
        num[h] = den[h] = 0.0f;
        for (u32 s = 0; s < splits; ++s) m[h] = fmaxf(m[h], merge_ml[s * 2 * ATT_GROUP + 2 * h]);
    }
#pragma unroll 8
    for (u32 s = 0; s < splits; ++s) {
        const float* ps = all + s * stride;
        float v[ATT_GROUP];
#pragma unroll
        for (int h = 0; h < ATT_GROUP; ++h) v[h] = __ldcg(ps + h * ATT_HEAD_DIM + tid);
#pragma unroll
        for (int h = 0; h < ATT_GROUP; ++h) {
            const float wgt = fast_exp2(merge_ml[s * 2 * ATT_GROUP + 2 * h] - m[h]);
            num[h] += wgt * v[h];
            den[h] += wgt * merge_ml[s * 2 * ATT_GROUP + 2 * h + 1];
        }
    }
#pragma unroll
    for (int h = 0; h < ATT_GROUP; ++h) out_row[h * ATT_HEAD_DIM + tid] = f32_to_half<BF16>(num[h] / den[h]);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS) decode_attention_f16(const u16* q, u32 q_stride, const u16* kc, const u16* vc, u16* out, float* partial, u32* counters, u32 context, u32 chunk, float scale_log2) {
    decode_attention<false, false>(q, q_stride, kc, vc, out, partial, counters, context, chunk, scale_log2);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS) decode_attention_bf16(const u16* q, u32 q_stride, const u16* kc, const u16* vc, u16* out, float* partial, u32* counters, u32 context, u32 chunk, float scale_log2) {
    decode_attention<true, false>(q, q_stride, kc, vc, out, partial, counters, context, chunk, scale_log2);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS) decode_attention_early_f16(const u16* q, u32 q_stride, const u16* kc, const u16* vc, u16* out, float* partial, u32* counters, u32 context, u32 chunk, float scale_log2) {
    decode_attention<false, true>(q, q_stride, kc, vc, out, partial, counters, context, chunk, scale_log2);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS) decode_attention_early_bf16(const u16* q, u32 q_stride, const u16* kc, const u16* vc, u16* out, float* partial, u32* counters, u32 context, u32 chunk, float scale_log2) {
    decode_attention<true, true>(q, q_stride, kc, vc, out, partial, counters, context, chunk, scale_log2);
}

// ---------------------------------------------------------------------------------------
// Glue for batches above DEC_MAX_BATCH, where the projections are cuBLASLt GEMMs over the same
// fused weights: the new key and value from the QKV GEMM's output into the cache, and SwiGLU
// over the tile-interleaved gate/up output.

template <bool BF16>
__device__ void decode_kv_append(const u16* __restrict__ qkv, u16* __restrict__ kcache, u16* __restrict__ vcache, u32 batch, u32 qd, u32 kvd,
                                 u32 head_dim, u32 slots, u32 pos) {
    const u64 n = (u64)batch * 2 * kvd;
    for (u64 i = grid_thread(); i < n; i += grid_stride()) {
        const u32 token = (u32)(i / (2 * kvd)), c = (u32)(i % (2 * kvd));
        const u32 rr = c % kvd, head = rr / head_dim, d = rr % head_dim;
        u16* cache = c < kvd ? kcache : vcache;
        cache[(((u64)token * (kvd / head_dim) + head) * slots + pos) * head_dim + d] = qkv[(u64)token * (qd + 2 * kvd) + qd + c];
    }
}
extern "C" __global__ void decode_kv_append_f16(const u16* qkv, u16* kc, u16* vc, u32 batch, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_kv_append<false>(qkv, kc, vc, batch, qd, kvd, hd, slots, pos);
}
extern "C" __global__ void decode_kv_append_bf16(const u16* qkv, u16* kc, u16* vc, u32 batch, u32 qd, u32 kvd, u32 hd, u32 slots, u32 pos) {
    decode_kv_append<true>(qkv, kc, vc, batch, qd, kvd, hd, slots, pos);
}

template <bool BF16> __device__ void decode_swiglu_tiles(const u16* __restrict__ gate_up, u16* __restrict__ out, u32 batch, u32 intermediate) {
    const u64 n = (u64)batch * intermediate;
    for (u64 i = grid_thread(); i < n; i += grid_stride()) {
        const u64 token = i / intermediate;
        const u32 c = (u32)(i % intermediate);
        const u64 base = token * 2 * intermediate + (u64)(c / 8) * 16 + c % 8;
        const float g = half_to_f32<BF16>(gate_up[base]), u = half_to_f32<BF16>(gate_up[base + 8]);
        out[i] = f32_to_half<BF16>(g / (1.0f + __expf(-g)) * u);
    }
}
extern "C" __global__ void decode_swiglu_tiles_f16(const u16* gu, u16* out, u32 batch, u32 inter) { decode_swiglu_tiles<false>(gu, out, batch, inter); }
extern "C" __global__ void decode_swiglu_tiles_bf16(const u16* gu, u16* out, u32 batch, u32 inter) { decode_swiglu_tiles<true>(gu, out, batch, inter); }
