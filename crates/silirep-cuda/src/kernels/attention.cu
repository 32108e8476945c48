// Attention kernels: the row softmax of the naive path (its GEMMs are cuBLASLt), and a fused
// flash-attention forward kernel on tensor cores (mma.sync m16n8k16, f32 accumulation).

// ---------------------------------------------------------------- naive: row softmax

#define SOFTMAX_MAX_THREADS 256
#define SOFTMAX_MAX_CHUNKS 4  // 8 halves per chunk: rows up to 256·8·4 = 8192 columns
#define LOG2E 1.4426950408889634f

// In place over rows of `cols` 16-bit scores (already scaled by 1/√d in the QKᵀ GEMM). Each
// row stays in registers between the max, sum and normalise passes: one read, one write.
// The launch sizes the block to the row (cols/32 threads, at least one warp), so every
// thread holds a full 32 values and short rows do not leave most of a block idle.
template <bool BF16> __device__ void softmax_rows(u16* scores, u32 cols) {
    __shared__ float scratch[32];
    uint4* row = (uint4*)(scores + (u64)blockIdx.x * cols);
    const u32 chunks = cols / 8;
    float v[SOFTMAX_MAX_CHUNKS][8];
    float m = negative_infinity();
#pragma unroll
    for (int c = 0; c < SOFTMAX_MAX_CHUNKS; ++c) {
        const u32 idx = threadIdx.x + c * blockDim.x;
        if (idx < chunks) {
            const uint4 raw = row[idx];
            const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                v[c][2 * e] = half_to_f32<BF16>((u16)(w[e] & 0xffff));
                v[c][2 * e + 1] = half_to_f32<BF16>((u16)(w[e] >> 16));
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) m = fmaxf(m, v[c][e]);
        }
    }
    m = block_max(m, scratch);
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < SOFTMAX_MAX_CHUNKS; ++c) {
        if (threadIdx.x + c * blockDim.x < chunks) {
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                v[c][e] = fast_exp2((v[c][e] - m) * LOG2E);
                sum += v[c][e];
            }
        }
    }
    sum = block_sum<float>(sum, scratch);
    const float inv = 1.0f / sum;
#pragma unroll
    for (int c = 0; c < SOFTMAX_MAX_CHUNKS; ++c) {
        const u32 idx = threadIdx.x + c * blockDim.x;
        if (idx < chunks) {
            u32 w[4];
#pragma unroll
            for (int e = 0; e < 4; ++e)
                w[e] = (u32)f32_to_half<BF16>(v[c][2 * e] * inv) | ((u32)f32_to_half<BF16>(v[c][2 * e + 1] * inv) << 16);
            row[idx] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(SOFTMAX_MAX_THREADS) softmax_rows_f16(u16* scores, u32 cols) {
    softmax_rows<false>(scores, cols);
}
extern "C" __global__ void __launch_bounds__(SOFTMAX_MAX_THREADS) softmax_rows_bf16(u16* scores, u32 cols) {
    softmax_rows<true>(scores, cols);
}

// ---------------------------------------------------------------- fused: flash attention

// 128 query rows per block, 16 per warp; keys and values stream through shared memory in
// tiles of 64 rows, double-buffered with cp.async so the next tile loads while this one is
// multiplied. Rows of 128 halves (256 bytes) are stored with their 16-byte chunks XOR-swizzled
// by (row % 8), so the eight rows an ldmatrix reads hit eight different bank groups.
#define FA_HEAD_DIM 128
#define FA_BLOCK_M 128
#define FA_BLOCK_N 64
#define FA_THREADS 256
#define FA_ROW_BYTES 256
#define FA_Q_BYTES (FA_BLOCK_M * FA_ROW_BYTES)
#define FA_KV_BYTES (FA_BLOCK_N * FA_ROW_BYTES)
// Q tile + double-buffered K and V tiles: 96 KiB of dynamic shared memory.
#define FA_SMEM_BYTES (FA_Q_BYTES + 4 * FA_KV_BYTES)

__device__ __forceinline__ u32 shared_address(const void* p) {
    u64 a;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
    return (u32)a;
}
__device__ __forceinline__ u32 swizzled(u32 base, u32 row, u32 chunk) {
    return base + row * FA_ROW_BYTES + ((chunk ^ (row & 7)) << 4);
}
__device__ __forceinline__ void cp_async_16(u32 dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
template <bool BF16> __device__ __forceinline__ void mma_16816(float* d, const u32* a, u32 b0, u32 b1) {
    if (BF16) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
}
// Two f32 → one register of two halves, `lo` in the low 16 bits.
template <bool BF16> __device__ __forceinline__ u32 pack_halves(float lo, float hi) {
    u32 r;
    if (BF16) {
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    } else {
        asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    }
    return r;
}

__device__ __forceinline__ void load_tile(u32 smem, const u16* src, u64 row_stride, u32 rows) {
    for (u32 c = threadIdx.x; c < rows * 16; c += FA_THREADS) {
        const u32 r = c / 16, ch = c % 16;
        cp_async_16(swizzled(smem, r, ch), src + (u64)r * row_stride + ch * 8);
    }
}

// Layout: element (batch b, head h, row r, column c) of Q and O is at
// b·q_batch_stride + h·q_head_stride + r·q_row_stride + c; K and V likewise with the kv
// strides and kv head h / kv_group (grouped-query attention). `scale_log2` = log2(e)/√d.
template <bool BF16>
__device__ void flash_forward(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
                              u16* __restrict__ o, u32 seq, u32 heads, u32 kv_group, u64 q_batch_stride,
                              u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride, u64 kv_head_stride,
                              u64 kv_row_stride, float scale_log2) {
    extern __shared__ __align__(128) u8 smem[];
    const u32 sq = shared_address(smem);
    const u32 sk = sq + FA_Q_BYTES;
    const u32 sv = sk + 2 * FA_KV_BYTES;
    const u32 warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const u32 batch = blockIdx.y / heads, head = blockIdx.y % heads, kv_head = head / kv_group;
    const u32 m0 = blockIdx.x * FA_BLOCK_M;
    const u64 q_offset = batch * q_batch_stride + head * q_head_stride;
    const u16* kb = k + batch * kv_batch_stride + kv_head * kv_head_stride;
    const u16* vb = v + batch * kv_batch_stride + kv_head * kv_head_stride;

    load_tile(sq, q + q_offset + (u64)m0 * q_row_stride, q_row_stride, FA_BLOCK_M);
    cp_async_commit();
    load_tile(sk, kb, kv_row_stride, FA_BLOCK_N);
    load_tile(sv, vb, kv_row_stride, FA_BLOCK_N);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    // This warp's 16 query rows as mma A fragments, one per 16 columns of head_dim.
    u32 qf[FA_HEAD_DIM / 16][4];
#pragma unroll
    for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
        const u32 row = warp * 16 + (lane % 8) + 8 * ((lane / 8) % 2);
        ldmatrix_x4(qf[kk], swizzled(sq, row, 2 * kk + lane / 16));
    }

    float acc[FA_HEAD_DIM / 8][4];
#pragma unroll
    for (int n = 0; n < FA_HEAD_DIM / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    // Running max (log2 domain) and partial row sums for rows lane/4 and lane/4 + 8.
    float row_max[2] = {negative_infinity(), negative_infinity()};
    float row_sum[2] = {0.0f, 0.0f};

    const u32 tiles = seq / FA_BLOCK_N;
    for (u32 j = 0; j < tiles; ++j) {
        const u32 buf = j & 1;
        if (j + 1 < tiles) {
            const u64 next = (u64)(j + 1) * FA_BLOCK_N * kv_row_stride;
            load_tile(sk + (buf ^ 1) * FA_KV_BYTES, kb + next, kv_row_stride, FA_BLOCK_N);
            load_tile(sv + (buf ^ 1) * FA_KV_BYTES, vb + next, kv_row_stride, FA_BLOCK_N);
        }
        // Always commit (an empty group is legal) so "all but the newest group" is this tile.
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const u32 kt = sk + buf * FA_KV_BYTES, vt = sv + buf * FA_KV_BYTES;

        // S = Q·Kᵀ for 16 rows × 64 keys: eight n-tiles of 8 keys.
        float s[FA_BLOCK_N / 8][4];
#pragma unroll
        for (int n = 0; n < FA_BLOCK_N / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
#pragma unroll
            for (int jn = 0; jn < FA_BLOCK_N / 16; ++jn) {
                u32 b[4];
                const u32 row = (2 * jn + lane / 16) * 8 + lane % 8;
                ldmatrix_x4(b, swizzled(kt, row, 2 * kk + (lane / 8) % 2));
                mma_16816<BF16>(s[2 * jn], qf[kk], b[0], b[1]);
                mma_16816<BF16>(s[2 * jn + 1], qf[kk], b[2], b[3]);
            }
        }

        // Online softmax (FlashAttention's recurrence), in the log2 domain.
        float tile_max[2] = {negative_infinity(), negative_infinity()};
#pragma unroll
        for (int n = 0; n < FA_BLOCK_N / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) s[n][e] *= scale_log2;
            tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
            tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
        }
        float rescale[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
            const float new_max = fmaxf(row_max[r], tile_max[r]);
            rescale[r] = fast_exp2(row_max[r] - new_max);
            row_max[r] = new_max;
            row_sum[r] *= rescale[r];
        }
#pragma unroll
        for (int n = 0; n < FA_BLOCK_N / 8; ++n) {
            s[n][0] = fast_exp2(s[n][0] - row_max[0]);
            s[n][1] = fast_exp2(s[n][1] - row_max[0]);
            s[n][2] = fast_exp2(s[n][2] - row_max[1]);
            s[n][3] = fast_exp2(s[n][3] - row_max[1]);
            row_sum[0] += s[n][0] + s[n][1];
            row_sum[1] += s[n][2] + s[n][3];
        }
#pragma unroll
        for (int n = 0; n < FA_HEAD_DIM / 8; ++n) {
            acc[n][0] *= rescale[0];
            acc[n][1] *= rescale[0];
            acc[n][2] *= rescale[1];
            acc[n][3] *= rescale[1];
        }

        // O += P·V. Two adjacent S n-tiles are exactly one A fragment of P (16 keys), so P
        // never leaves registers.
#pragma unroll
        for (int kk = 0; kk < FA_BLOCK_N / 16; ++kk) {
            const u32 pa[4] = {pack_halves<BF16>(s[2 * kk][0], s[2 * kk][1]),
                               pack_halves<BF16>(s[2 * kk][2], s[2 * kk][3]),
                               pack_halves<BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               pack_halves<BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int jd = 0; jd < FA_HEAD_DIM / 16; ++jd) {
                u32 b[4];
                const u32 row = 16 * kk + (lane % 8) + 8 * ((lane / 8) % 2);
                ldmatrix_x4_trans(b, swizzled(vt, row, 2 * jd + lane / 16));
                mma_16816<BF16>(acc[2 * jd], pa, b[0], b[1]);
                mma_16816<BF16>(acc[2 * jd + 1], pa, b[2], b[3]);
            }
        }
        // Every warp is done with this buffer before the next iteration refills it.
        __syncthreads();
    }

    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float total = row_sum[r];
        total += __shfl_xor_sync(0xffffffffu, total, 1);
        total += __shfl_xor_sync(0xffffffffu, total, 2);
        inv[r] = 1.0f / total;
    }
    const u32 g = lane / 4, t = lane % 4;
    u16* o0 = o + q_offset + (u64)(m0 + warp * 16 + g) * q_row_stride;
    u16* o1 = o0 + 8 * q_row_stride;
#pragma unroll
    for (int n = 0; n < FA_HEAD_DIM / 8; ++n) {
        *(u32*)(o0 + n * 8 + 2 * t) = pack_halves<BF16>(acc[n][0] * inv[0], acc[n][1] * inv[0]);
        *(u32*)(o1 + n * 8 + 2 * t) = pack_halves<BF16>(acc[n][2] * inv[1], acc[n][3] * inv[1]);
    }
}

extern "C" __global__ void __launch_bounds__(FA_THREADS, 1)
    flash_attention_f16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group,
                        u64 q_batch_stride, u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride,
                        u64 kv_head_stride, u64 kv_row_stride, float scale_log2) {
    flash_forward<false>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride,
                         kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS, 1)
    flash_attention_bf16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group,
                         u64 q_batch_stride, u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride,
                         u64 kv_head_stride, u64 kv_row_stride, float scale_log2) {
    flash_forward<true>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride,
                        kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2);
}
