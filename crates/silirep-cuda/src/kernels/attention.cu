// Attention kernels: the row softmax of the naive path (its GEMMs are cuBLASLt), and fused
// flash-attention forward kernels on tensor cores with f32 accumulation: a portable one on
// mma.sync m16n8k16 (sm_80 and later) and a Hopper one on wgmma (sm_90a).

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

// 128 query rows per block of 4 warps, 32 rows (two m16 tiles) per warp; keys and values
// stream through shared memory in tiles of 64 rows, double-buffered with cp.async so the next
// tile loads while this one is multiplied. Rows of 128 halves (256 bytes) are stored with their
// 16-byte chunks XOR-swizzled by (row % 8), so the eight rows an ldmatrix reads hit eight
// different bank groups.
//
// Why 32 rows per warp (the first version had 8 warps of 16): each K or V fragment read from
// shared memory then feeds twice as many mma instructions (shared-memory bandwidth bounded the
// 16-row kernel at 280 TFLOP/s on an H100; this one reaches 340), and two blocks fit per SM,
// so one block's barrier stalls are covered by the other. Q fragments are re-read from shared
// memory per K tile: keeping them in registers would not fit beside 32 rows of output (the
// kernel already uses all 255 registers, without spills).
#define FA_HEAD_DIM 128
#define FA_BLOCK_M 128
#define FA_BLOCK_N 64
#define FA_THREADS 128
#define FA_M_TILES 2
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

// 2^x for two values at once, x rounded to 16 bits first (P is rounded to 16 bits for the PV
// product anyway): one instruction on the slow exponential unit per pair instead of two
// (+2–3% on an H100 at seq 4096–8192).
template <bool BF16> __device__ __forceinline__ u32 exp2_pair(float lo, float hi) {
    u32 x = pack_halves<BF16>(lo, hi), y;
    if (BF16) {
        asm("ex2.approx.ftz.bf16x2 %0, %1;" : "=r"(y) : "r"(x));
    } else {
        asm("ex2.approx.f16x2 %0, %1;" : "=r"(y) : "r"(x));
    }
    return y;
}
// Sum of the two non-negative 16-bit values in `w`, as f32 by bit manipulation rather than
// conversion instructions (which run at the exponential unit's low rate). f16 values come out scaled by 2^-112
// (the exponent-bias difference), which the caller removes once per tile.
template <bool BF16> __device__ __forceinline__ float pair_sum(u32 w) {
    if (BF16) return __uint_as_float(w << 16) + __uint_as_float(w & 0xffff0000u);
    return __uint_as_float((w << 13) & 0x0fffe000u) + __uint_as_float((w >> 3) & 0x0fffe000u);
}

// One m-tile's online-softmax step in the log2 domain, shared by the mma.sync and wgmma
// kernels: p = 2^(s·scale_log2 − max·scale_log2) (one FFMA per score, one ex2 per pair), the
// running max and sum updated, the output accumulator rescaled, and the probabilities packed
// in pairs into s's first two slots (bit patterns) for the P·V product.
template <bool BF16>
__device__ __forceinline__ void online_softmax_step(float (&s)[FA_BLOCK_N / 8][4],
                                                    float (&acc)[FA_HEAD_DIM / 8][4],
                                                    float (&row_max)[2], float (&row_sum)[2],
                                                    float scale_log2) {
    float tile_max[2] = {negative_infinity(), negative_infinity()};
#pragma unroll
    for (int n = 0; n < FA_BLOCK_N / 8; ++n) {
        tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
        tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
    }
    float rescale[2], offset[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
        const float new_max = fmaxf(row_max[r], tile_max[r]);
        rescale[r] = fast_exp2((row_max[r] - new_max) * scale_log2);
        row_max[r] = new_max;
        row_sum[r] *= rescale[r];
        offset[r] = new_max * scale_log2;
    }
    float part[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < FA_BLOCK_N / 8; ++n) {
        const u32 p0 = exp2_pair<BF16>(fmaf(s[n][0], scale_log2, -offset[0]),
                                       fmaf(s[n][1], scale_log2, -offset[0]));
        const u32 p1 = exp2_pair<BF16>(fmaf(s[n][2], scale_log2, -offset[1]),
                                       fmaf(s[n][3], scale_log2, -offset[1]));
        part[0] += pair_sum<BF16>(p0);
        part[1] += pair_sum<BF16>(p1);
        // The packed pairs travel in s's first two slots (bit patterns).
        s[n][0] = __uint_as_float(p0);
        s[n][1] = __uint_as_float(p1);
    }
    const float unscale = BF16 ? 1.0f : 5.192296858534828e33f;  // 2^112
    row_sum[0] += part[0] * unscale;
    row_sum[1] += part[1] * unscale;
#pragma unroll
    for (int n = 0; n < FA_HEAD_DIM / 8; ++n) {
        acc[n][0] *= rescale[0];
        acc[n][1] *= rescale[0];
        acc[n][2] *= rescale[1];
        acc[n][3] *= rescale[1];
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
    load_tile(sk, kb, kv_row_stride, FA_BLOCK_N);
    load_tile(sv, vb, kv_row_stride, FA_BLOCK_N);
    cp_async_commit();

    float acc[FA_M_TILES][FA_HEAD_DIM / 8][4];
#pragma unroll
    for (int mt = 0; mt < FA_M_TILES; ++mt)
#pragma unroll
        for (int n = 0; n < FA_HEAD_DIM / 8; ++n) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
    // Running max (raw scores) and partial row sums for rows lane/4 and lane/4 + 8 of each m-tile.
    float row_max[FA_M_TILES][2], row_sum[FA_M_TILES][2];
#pragma unroll
    for (int mt = 0; mt < FA_M_TILES; ++mt) {
        row_max[mt][0] = row_max[mt][1] = negative_infinity();
        row_sum[mt][0] = row_sum[mt][1] = 0.0f;
    }

    const u32 tiles = seq / FA_BLOCK_N;
    for (u32 j = 0; j < tiles; ++j) {
        const u32 buf = j & 1;
        // Tile j has landed and every warp is done with tile j − 1, whose buffer then takes
        // tile j + 1 while this one is multiplied: one barrier per tile.
        cp_async_wait<0>();
        __syncthreads();
        if (j + 1 < tiles) {
            const u64 next = (u64)(j + 1) * FA_BLOCK_N * kv_row_stride;
            load_tile(sk + (buf ^ 1) * FA_KV_BYTES, kb + next, kv_row_stride, FA_BLOCK_N);
            load_tile(sv + (buf ^ 1) * FA_KV_BYTES, vb + next, kv_row_stride, FA_BLOCK_N);
        }
        cp_async_commit();
        const u32 kt = sk + buf * FA_KV_BYTES, vt = sv + buf * FA_KV_BYTES;

        float s[FA_M_TILES][FA_BLOCK_N / 8][4];
#pragma unroll
        for (int mt = 0; mt < FA_M_TILES; ++mt)
#pragma unroll
            for (int n = 0; n < FA_BLOCK_N / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
            u32 qf[FA_M_TILES][4];
#pragma unroll
            for (int mt = 0; mt < FA_M_TILES; ++mt) {
                const u32 row = warp * 32 + mt * 16 + (lane % 8) + 8 * ((lane / 8) % 2);
                ldmatrix_x4(qf[mt], swizzled(sq, row, 2 * kk + lane / 16));
            }
#pragma unroll
            for (int jn = 0; jn < FA_BLOCK_N / 16; ++jn) {
                u32 b[4];
                const u32 row = (2 * jn + lane / 16) * 8 + lane % 8;
                ldmatrix_x4(b, swizzled(kt, row, 2 * kk + (lane / 8) % 2));
#pragma unroll
                for (int mt = 0; mt < FA_M_TILES; ++mt) {
                    mma_16816<BF16>(s[mt][2 * jn], qf[mt], b[0], b[1]);
                    mma_16816<BF16>(s[mt][2 * jn + 1], qf[mt], b[2], b[3]);
                }
            }
        }

#pragma unroll
        for (int mt = 0; mt < FA_M_TILES; ++mt) {
            online_softmax_step<BF16>(s[mt], acc[mt], row_max[mt], row_sum[mt], scale_log2);
        }

        // O += P·V, each V fragment shared by both m-tiles.
#pragma unroll
        for (int kk = 0; kk < FA_BLOCK_N / 16; ++kk) {
            u32 pa[FA_M_TILES][4];
#pragma unroll
            for (int mt = 0; mt < FA_M_TILES; ++mt) {
                pa[mt][0] = __float_as_uint(s[mt][2 * kk][0]);
                pa[mt][1] = __float_as_uint(s[mt][2 * kk][1]);
                pa[mt][2] = __float_as_uint(s[mt][2 * kk + 1][0]);
                pa[mt][3] = __float_as_uint(s[mt][2 * kk + 1][1]);
            }
#pragma unroll
            for (int jd = 0; jd < FA_HEAD_DIM / 16; ++jd) {
                u32 b[4];
                const u32 row = 16 * kk + (lane % 8) + 8 * ((lane / 8) % 2);
                ldmatrix_x4_trans(b, swizzled(vt, row, 2 * jd + lane / 16));
#pragma unroll
                for (int mt = 0; mt < FA_M_TILES; ++mt) {
                    mma_16816<BF16>(acc[mt][2 * jd], pa[mt], b[0], b[1]);
                    mma_16816<BF16>(acc[mt][2 * jd + 1], pa[mt], b[2], b[3]);
                }
            }
        }
    }

    const u32 g = lane / 4, t = lane % 4;
#pragma unroll
    for (int mt = 0; mt < FA_M_TILES; ++mt) {
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float total = row_sum[mt][r];
            total += __shfl_xor_sync(0xffffffffu, total, 1);
            total += __shfl_xor_sync(0xffffffffu, total, 2);
            inv[r] = 1.0f / total;
        }
        u16* o0 = o + q_offset + (u64)(m0 + warp * 32 + mt * 16 + g) * q_row_stride;
        u16* o1 = o0 + 8 * q_row_stride;
#pragma unroll
        for (int n = 0; n < FA_HEAD_DIM / 8; ++n) {
            *(u32*)(o0 + n * 8 + 2 * t) = pack_halves<BF16>(acc[mt][n][0] * inv[0], acc[mt][n][1] * inv[0]);
            *(u32*)(o1 + n * 8 + 2 * t) = pack_halves<BF16>(acc[mt][n][2] * inv[1], acc[mt][n][3] * inv[1]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(FA_THREADS, 2)
    flash_attention_f16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group, u64 q_batch_stride,
           u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride, u64 kv_head_stride, u64 kv_row_stride,
           float scale_log2) {
    flash_forward<false>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride,
                        kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS, 2)
    flash_attention_bf16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group, u64 q_batch_stride,
           u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride, u64 kv_head_stride, u64 kv_row_stride,
           float scale_log2) {
    flash_forward<true>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride,
                        kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2);
}

// ---------------------------------------------------------------- fused on Hopper: wgmma

// The same algorithm and tiles on Hopper's warpgroup MMA (sm_90a): one block is one warpgroup
// (4 warps) computing 128 query rows as two m64 tiles. S = Q·Kᵀ reads Q and K straight from
// shared memory through matrix descriptors (no ldmatrix, no register copies of Q), and
// O += P·V takes P from registers, in the same fragment layout as mma.sync's, with V read
// transposed from shared memory. Tiles use the hardware's 128-byte swizzle: each tile is two
// column halves of 64 elements, rows of 128 bytes, 16-byte chunk c of row r stored at chunk
// c ^ (r % 8), every tile 1024-byte aligned. Compiled only for sm_90a (elsewhere the body is
// empty and the host launches the mma.sync kernel above).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
template <bool BF16> __device__ __forceinline__ void wgmma_m64n64_ss(float* d, u64 desc_a, u64 desc_b) {
    if (BF16) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                     : "l"(desc_a), "l"(desc_b));
    } else {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                     : "l"(desc_a), "l"(desc_b));
    }
}
template <bool BF16> __device__ __forceinline__ void wgmma_m64n128_rs(float* d, const u32* a, u64 desc_b) {
    if (BF16) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
    } else {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
    }
}

__device__ __forceinline__ u32 wg_offset(u32 row, u32 chunk, u32 rows) {
    return (chunk / 8) * rows * 128 + row * 128 + (((chunk % 8) ^ (row % 8)) << 4);
}
__device__ __forceinline__ void load_tile_wg(u32 smem, const u16* src, u64 row_stride, u32 rows) {
    for (u32 c = threadIdx.x; c < rows * 16; c += FA_THREADS) {
        const u32 r = c / 16, ch = c % 16;
        cp_async_16(smem + wg_offset(r, ch, rows), src + (u64)r * row_stride + ch * 8);
    }
}
// Shared-memory matrix descriptor, 128-byte swizzle; offsets in bytes.
__device__ __forceinline__ u64 wg_desc(u32 addr, u32 leading, u32 stride) {
    return (u64)((addr & 0x3ffff) >> 4) | ((u64)(leading >> 4) << 16) | ((u64)(stride >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

template <bool BF16>
__device__ void flash_forward_wgmma(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
                                    u16* __restrict__ o, u32 seq, u32 heads, u32 kv_group, u64 q_batch_stride,
                                    u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride, u64 kv_head_stride,
                                    u64 kv_row_stride, float scale_log2) {
    extern __shared__ __align__(128) u8 smem_wg[];
    const u32 sq = (shared_address(smem_wg) + 1023) & ~1023u;
    const u32 sk = sq + FA_Q_BYTES;
    const u32 sv = sk + 2 * FA_KV_BYTES;
    const u32 warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const u32 batch = blockIdx.y / heads, head = blockIdx.y % heads, kv_head = head / kv_group;
    const u32 m0 = blockIdx.x * FA_BLOCK_M;
    const u64 q_offset = batch * q_batch_stride + head * q_head_stride;
    const u16* kb = k + batch * kv_batch_stride + kv_head * kv_head_stride;
    const u16* vb = v + batch * kv_batch_stride + kv_head * kv_head_stride;

    load_tile_wg(sq, q + q_offset + (u64)m0 * q_row_stride, q_row_stride, FA_BLOCK_M);
    load_tile_wg(sk, kb, kv_row_stride, FA_BLOCK_N);
    load_tile_wg(sv, vb, kv_row_stride, FA_BLOCK_N);
    cp_async_commit();

    float acc[FA_M_TILES][FA_HEAD_DIM / 8][4];
#pragma unroll
    for (int mt = 0; mt < FA_M_TILES; ++mt)
#pragma unroll
        for (int n = 0; n < FA_HEAD_DIM / 8; ++n) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.0f;
    float row_max[FA_M_TILES][2], row_sum[FA_M_TILES][2];
#pragma unroll
    for (int mt = 0; mt < FA_M_TILES; ++mt) {
        row_max[mt][0] = row_max[mt][1] = negative_infinity();
        row_sum[mt][0] = row_sum[mt][1] = 0.0f;
    }

    const u32 tiles = seq / FA_BLOCK_N;
    for (u32 j = 0; j < tiles; ++j) {
        const u32 buf = j & 1;
        cp_async_wait<0>();
        // cp.async writes are generic-proxy writes; wgmma reads through the async proxy.
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        __syncthreads();
        if (j + 1 < tiles) {
            const u64 next = (u64)(j + 1) * FA_BLOCK_N * kv_row_stride;
            load_tile_wg(sk + (buf ^ 1) * FA_KV_BYTES, kb + next, kv_row_stride, FA_BLOCK_N);
            load_tile_wg(sv + (buf ^ 1) * FA_KV_BYTES, vb + next, kv_row_stride, FA_BLOCK_N);
        }
        cp_async_commit();
        const u32 kt = sk + buf * FA_KV_BYTES, vt = sv + buf * FA_KV_BYTES;

        float s[FA_M_TILES][FA_BLOCK_N / 8][4];
#pragma unroll
        for (int mt = 0; mt < FA_M_TILES; ++mt)
#pragma unroll
            for (int n = 0; n < FA_BLOCK_N / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
        // S for both m-tiles, one commit group each; then per m-tile: wait for its S, softmax,
        // issue its P·V. The softmax of one m-tile overlaps the other's tensor-core work.
        wg_fence();
#pragma unroll
        for (int mt = 0; mt < FA_M_TILES; ++mt) {
#pragma unroll
            for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
                const u64 da = wg_desc(sq + (kk / 4) * FA_BLOCK_M * 128 + mt * 64 * 128 + (kk % 4) * 32, 16, 1024);
                const u64 db = wg_desc(kt + (kk / 4) * FA_BLOCK_N * 128 + (kk % 4) * 32, 16, 1024);
                wgmma_m64n64_ss<BF16>(&s[mt][0][0], da, db);
            }
            wg_commit();
        }

#pragma unroll
        for (int mt = 0; mt < FA_M_TILES; ++mt) {
            // Groups complete in order: S of m-tile 0, S of m-tile 1, then P·V of m-tile 0.
            wg_wait<1>();
            online_softmax_step<BF16>(s[mt], acc[mt], row_max[mt], row_sum[mt], scale_log2);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < FA_BLOCK_N / 16; ++kk) {
                const u32 pa[4] = {__float_as_uint(s[mt][2 * kk][0]), __float_as_uint(s[mt][2 * kk][1]),
                                   __float_as_uint(s[mt][2 * kk + 1][0]), __float_as_uint(s[mt][2 * kk + 1][1])};
                // V is [keys × head_dim], head_dim contiguous: B transposed (MN-major); the next
                // 64 columns are one column half (FA_BLOCK_N rows) further, the next 8 keys 1 KiB.
                const u64 db = wg_desc(vt + kk * 16 * 128, FA_BLOCK_N * 128, 1024);
                wgmma_m64n128_rs<BF16>(&acc[mt][0][0], pa, db);
            }
            wg_commit();
        }
        wg_wait<0>();
    }

    const u32 g = lane / 4, t = lane % 4;
#pragma unroll
    for (int mt = 0; mt < FA_M_TILES; ++mt) {
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float total = row_sum[mt][r];
            total += __shfl_xor_sync(0xffffffffu, total, 1);
            total += __shfl_xor_sync(0xffffffffu, total, 2);
            inv[r] = 1.0f / total;
        }
        u16* o0 = o + q_offset + (u64)(m0 + mt * 64 + warp * 16 + g) * q_row_stride;
        u16* o1 = o0 + 8 * q_row_stride;
#pragma unroll
        for (int n = 0; n < FA_HEAD_DIM / 8; ++n) {
            *(u32*)(o0 + n * 8 + 2 * t) = pack_halves<BF16>(acc[mt][n][0] * inv[0], acc[mt][n][1] * inv[0]);
            *(u32*)(o1 + n * 8 + 2 * t) = pack_halves<BF16>(acc[mt][n][2] * inv[1], acc[mt][n][3] * inv[1]);
        }
    }
}
#define FLASH_WGMMA_BODY(BF16)                                                                                 \
    flash_forward_wgmma<BF16>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride, \
                              kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2)
#else
#define FLASH_WGMMA_BODY(BF16)
#endif

extern "C" __global__ void __launch_bounds__(FA_THREADS, 2)
    flash_attention_wgmma_f16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group,
                              u64 q_batch_stride, u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride,
                              u64 kv_head_stride, u64 kv_row_stride, float scale_log2) {
    FLASH_WGMMA_BODY(false);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS, 2)
    flash_attention_wgmma_bf16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group,
                               u64 q_batch_stride, u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride,
                               u64 kv_head_stride, u64 kv_row_stride, float scale_log2) {
    FLASH_WGMMA_BODY(true);
}
