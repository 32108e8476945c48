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
// thread holds a full 32 values and short rows do not leave most of a block idle. With
// `causal`, row r of each head's square score matrix keeps columns 0..=r (the rest become 0).
template <bool BF16> __device__ void softmax_rows(u16* scores, u32 cols, u32 causal) {
    __shared__ float scratch[32];
    uint4* row = (uint4*)(scores + (u64)blockIdx.x * cols);
    const u32 chunks = cols / 8;
    const u32 last = causal ? blockIdx.x % cols : cols - 1;
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
            for (int e = 0; e < 8; ++e) {
                if (idx * 8 + e > last) v[c][e] = negative_infinity();
                m = fmaxf(m, v[c][e]);
            }
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

extern "C" __global__ void __launch_bounds__(SOFTMAX_MAX_THREADS) softmax_rows_f16(u16* scores, u32 cols, u32 causal) {
    softmax_rows<false>(scores, cols, causal);
}
extern "C" __global__ void __launch_bounds__(SOFTMAX_MAX_THREADS) softmax_rows_bf16(u16* scores, u32 cols, u32 causal) {
    softmax_rows<true>(scores, cols, causal);
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
// kernels, over NF fragments of 8 keys: p = 2^(s·scale_log2 − max·scale_log2) (one FFMA per
// score, one ex2 per pair), the running max and sum updated, and the probabilities packed in
// pairs into s's first two slots (bit patterns) for the P·V product. The output accumulator's
// rescale factors come back in `rescale` rather than being applied here: the Hopper kernel
// applies them only once its previous P·V product, still running, has finished.
template <bool BF16, int NF>
__device__ __forceinline__ void online_softmax_step(float (&s)[NF][4], float (&row_max)[2], float (&row_sum)[2],
                                                    float scale_log2, float (&rescale)[2]) {
    float tile_max[2] = {negative_infinity(), negative_infinity()};
#pragma unroll
    for (int n = 0; n < NF; ++n) {
        tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
        tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
    }
    float offset[2];
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
    for (int n = 0; n < NF; ++n) {
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
}

// Scales the output accumulator's two rows per thread (mma/wgmma fragment layout).
template <int ND> __device__ __forceinline__ void rescale_rows(float (&acc)[ND][4], const float (&rescale)[2]) {
#pragma unroll
    for (int n = 0; n < ND; ++n) {
        acc[n][0] *= rescale[0];
        acc[n][1] *= rescale[0];
        acc[n][2] *= rescale[1];
        acc[n][3] *= rescale[1];
    }
}

// Key > query → −∞, for a fragment tile whose thread holds keys key0 + 8n + {0, 1} of rows
// row0 and row0 + 8 (mma.sync / wgmma accumulator layout, key0 including the 2·(lane % 4)).
template <int NF> __device__ __forceinline__ void mask_future(float (&s)[NF][4], u32 key0, u32 row0) {
#pragma unroll
    for (int n = 0; n < NF; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (key0 + 8 * n + (e & 1) > row0 + 8 * (e >> 1)) s[n][e] = negative_infinity();
}

// Layout: element (batch b, head h, row r, column c) of Q and O is at
// b·q_batch_stride + h·q_head_stride + r·q_row_stride + c; K and V likewise with the kv
// strides and kv head h / kv_group (grouped-query attention). `scale_log2` = log2(e)/√d.
template <bool BF16>
__device__ void flash_forward(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
                              u16* __restrict__ o, u32 seq, u32 heads, u32 kv_group, u64 q_batch_stride,
                              u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride, u64 kv_head_stride,
                              u64 kv_row_stride, float scale_log2, u32 causal) {
    extern __shared__ __align__(128) u8 smem[];
    const u32 sq = shared_address(smem);
    const u32 sk = sq + FA_Q_BYTES;
    const u32 sv = sk + 2 * FA_KV_BYTES;
    const u32 warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const u32 batch = blockIdx.y / heads, head = blockIdx.y % heads, kv_head = head / kv_group;
    // Causal blocks start in reverse row order, so the longest ones start first.
    const u32 m0 = (causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x) * FA_BLOCK_M;
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

    // Causal: keys up to the block's last row only.
    const u32 tiles = causal ? (m0 + FA_BLOCK_M) / FA_BLOCK_N : seq / FA_BLOCK_N;
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

        // Tiles reaching past the block's first row hold future keys for some of its rows.
        if (causal && (j + 1) * FA_BLOCK_N > m0 + 1) {
#pragma unroll
            for (int mt = 0; mt < FA_M_TILES; ++mt)
                mask_future(s[mt], j * FA_BLOCK_N + 2 * (lane % 4), m0 + warp * 32 + mt * 16 + lane / 4);
        }
#pragma unroll
        for (int mt = 0; mt < FA_M_TILES; ++mt) {
            float rescale[2];
            online_softmax_step<BF16, FA_BLOCK_N / 8>(s[mt], row_max[mt], row_sum[mt], scale_log2, rescale);
            rescale_rows(acc[mt], rescale);
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
           float scale_log2, u32 causal) {
    flash_forward<false>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride,
                        kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2, causal);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS, 2)
    flash_attention_bf16(const u16* q, const u16* k, const u16* v, u16* o, u32 seq, u32 heads, u32 kv_group, u64 q_batch_stride,
           u64 q_head_stride, u64 q_row_stride, u64 kv_batch_stride, u64 kv_head_stride, u64 kv_row_stride,
           float scale_log2, u32 causal) {
    flash_forward<true>(q, k, v, o, seq, heads, kv_group, q_batch_stride, q_head_stride, q_row_stride,
                        kv_batch_stride, kv_head_stride, kv_row_stride, scale_log2, causal);
}

// ---------------------------------------------------------------- fused on Hopper: FlashAttention-3's structure

// Warp-specialised flash attention for Hopper (sm_90a), after FlashAttention-3. A persistent grid
// of one block per SM walks the work items, 128 query rows of one head each; a block is three
// warpgroups:
// - warpgroup 0 is the producer: one thread issues bulk tensor copies (TMA) of the Q tile once
//   per item and of 128-key K and V tiles into a two-stage ring, each stage guarded by "full" mbarriers
//   (the copy engine completes their transaction counts) and "empty" ones (the consumers
//   release). It gives its registers away (setmaxnreg.dec) to the consumers.
// - warpgroups 1 and 2 are consumers of 64 query rows each: S = Q·Kᵀ by wgmma m64n128k16 from
//   shared-memory descriptors, online softmax in registers, O += P·V by wgmma with P from
//   registers. Two overlaps hide the softmax (whose exponentials run on the slow MUFU unit)
//   behind tensor-core work: within a warpgroup, S of tile j is issued together with P·V of
//   tile j − 1, so the softmax of tile j runs while that P·V is still executing; between the
//   warpgroups, named barriers let only one issue its GEMMs at a time (ping-pong), so one
//   warpgroup's softmax runs while the other's GEMMs occupy the tensor cores.
// Tiles use the 128-byte swizzle both TMA (CU_TENSOR_MAP_SWIZZLE_128B, 64-element boxes) and the
// wgmma descriptors understand: a 128-row tile is two column halves of 64 elements (16 KiB each),
// rows of 128 bytes, 16-byte chunk c of row r at chunk c ^ (r % 8), every half 1024-byte aligned.
// Causal attention (key ≤ query) stops at the diagonal tile and masks inside it; a head's items
// run in reverse row order so the longest ones start first.
#define FA3_BLOCK_M 128
#define FA3_BLOCK_N 128
#define FA3_THREADS 384
#define FA3_TILE_BYTES (128 * FA_ROW_BYTES)
#define FA3_HALF_BYTES (FA3_TILE_BYTES / 2)
#define FA3_STAGES 2
// Q tile, FA3_STAGES K and V tiles, and 1 KiB to align the base to the swizzle's 1024-byte period.
#define FA3_SMEM_BYTES (FA3_TILE_BYTES * (1 + 2 * FA3_STAGES) + 1024)

// A CUtensorMap as cuTensorMapEncodeTiled writes it: 128 opaque bytes, passed by value.
struct __align__(64) TensorMap {
    u64 opaque[16];
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// D = A·B (ZERO: D's old contents neither read nor kept, so the compiler need not keep them
// live) or D += A·B, A and B K-major from shared memory.
template <bool BF16, bool ZERO> __device__ __forceinline__ void wgmma_m64n128_ss(float* d, u64 desc_a, u64 desc_b) {
    if (ZERO && BF16) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, 0, 1, 1, 0, 0;"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31]), "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]), "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]), "=f"(d[40]), "=f"(d[41]), "=f"(d[42]), "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]), "=f"(d[48]), "=f"(d[49]), "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]), "=f"(d[54]), "=f"(d[55]), "=f"(d[56]), "=f"(d[57]), "=f"(d[58]), "=f"(d[59]), "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])
                     : "l"(desc_a), "l"(desc_b));
    } else if (ZERO) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, 0, 1, 1, 0, 0;"
                     : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31]), "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]), "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]), "=f"(d[40]), "=f"(d[41]), "=f"(d[42]), "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]), "=f"(d[48]), "=f"(d[49]), "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]), "=f"(d[54]), "=f"(d[55]), "=f"(d[56]), "=f"(d[57]), "=f"(d[58]), "=f"(d[59]), "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])
                     : "l"(desc_a), "l"(desc_b));
    } else if (BF16) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, 1, 1, 1, 0, 0;"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "l"(desc_a), "l"(desc_b));
    } else {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, 1, 1, 1, 0, 0;"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "l"(desc_a), "l"(desc_b));
    }
}
// A (P) from registers in the mma.sync fragment layout; B (V) transposed: [keys × head_dim] with
// head_dim contiguous (MN-major).
template <bool BF16> __device__ __forceinline__ void wgmma_m64n128_rs(float* d, const u32* a, u64 desc_b) {
    if (BF16) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, 1, 1, 1, 1;"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
    } else {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, 1, 1, 1, 1;"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b));
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
// Keeps the compiler from moving reads or writes of registers that an in-flight wgmma owns
// across this point.
template <int N> __device__ __forceinline__ void fence_regs(float (&r)[N][4]) {
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(r[n][e])::"memory");
}

__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// One arrival that also announces `bytes` of copies completing on this phase.
__device__ __forceinline__ void mbar_expect_tx(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
    u32 done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!done);
}
// One box (64 columns × 128 rows of one head) from global to shared memory; completion counts
// its bytes on `bar`. Coordinates innermost first: column, row, head, batch.
__device__ __forceinline__ void tma_load(u32 dst, const TensorMap* map, u32 bar, u32 col, u32 row, u32 head,
                                         u32 batch) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];"
        ::"r"(dst), "l"((u64)map), "r"(col), "r"(row), "r"(head), "r"(batch), "r"(bar)
        : "memory");
}
// Both column halves of a 128-row tile.
__device__ __forceinline__ void tma_load_tile(u32 dst, const TensorMap* map, u32 bar, u32 row, u32 head, u32 batch) {
    mbar_expect_tx(bar, FA3_TILE_BYTES);
    tma_load(dst, map, bar, 0, row, head, batch);
    tma_load(dst + FA3_HALF_BYTES, map, bar, 64, row, head, batch);
}
// Named barriers 1 and 2 (0 is __syncthreads) over the two consumer warpgroups: warpgroup w
// waits on 1 + w until the other has arrived on it.
__device__ __forceinline__ void named_sync(u32 id) { asm volatile("bar.sync %0, 256;" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(u32 id) { asm volatile("bar.arrive %0, 256;" ::"r"(id) : "memory"); }

// S = Q·Kᵀ for 64 query rows × 128 keys, one commit group. `q_rows` is the warpgroup's first Q
// row in the first column half; each k16 step moves 32 bytes along the swizzled rows, and the
// upper 64 columns are one half (16 KiB) further.
template <bool BF16> __device__ __forceinline__ void fa3_qk(float (&s)[FA3_BLOCK_N / 8][4], u32 q_rows, u32 kt) {
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
        const u32 at = (kk / 4) * FA3_HALF_BYTES + (kk % 4) * 32;
        if (kk == 0) {
            wgmma_m64n128_ss<BF16, true>(&s[0][0], wg_desc(q_rows + at, 16, 1024), wg_desc(kt + at, 16, 1024));
        } else {
            wgmma_m64n128_ss<BF16, false>(&s[0][0], wg_desc(q_rows + at, 16, 1024), wg_desc(kt + at, 16, 1024));
        }
    }
    wg_commit();
}
// O += P·V over 128 keys, one commit group: k16 step kk takes keys 16kk… (2 KiB further), the
// upper 64 output columns are one half further (the descriptor's leading offset).
template <bool BF16>
__device__ __forceinline__ void fa3_pv(float (&acc)[FA_HEAD_DIM / 8][4], const u32 (&p)[FA3_BLOCK_N / 16][4], u32 vt) {
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < FA3_BLOCK_N / 16; ++kk)
        wgmma_m64n128_rs<BF16>(&acc[0][0], p[kk], wg_desc(vt + kk * 16 * 128, FA3_HALF_BYTES, 1024));
    wg_commit();
}
// The packed probabilities (online_softmax_step's output, in S's registers) as wgmma A
// fragments, written only once the previous P·V has finished. ptxas serialises every wgmma of
// a kernel (warning C7513) when an ordinary instruction writes, while any wgmma is in flight, a
// register some wgmma reads: were the exponentials' results the A registers themselves (ptxas
// folds a plain register copy away), the softmax would write them while the previous P·V reads
// them. An identity byte permute (prmt), which ptxas keeps, makes the copy real.
__device__ __forceinline__ u32 opaque_copy(u32 x) {
    u32 y;
    asm volatile("prmt.b32 %0, %1, 0, 0x3210;" : "=r"(y) : "r"(x));
    return y;
}
__device__ __forceinline__ void fa3_pack_p(u32 (&p)[FA3_BLOCK_N / 16][4], const float (&s)[FA3_BLOCK_N / 8][4]) {
#pragma unroll
    for (int kk = 0; kk < FA3_BLOCK_N / 16; ++kk) {
        p[kk][0] = opaque_copy(__float_as_uint(s[2 * kk][0]));
        p[kk][1] = opaque_copy(__float_as_uint(s[2 * kk][1]));
        p[kk][2] = opaque_copy(__float_as_uint(s[2 * kk + 1][0]));
        p[kk][3] = opaque_copy(__float_as_uint(s[2 * kk + 1][1]));
    }
}

// mbarriers: Q full and empty, then per stage K full, V full, K empty, V empty.
#define FA3_Q_FULL 0
#define FA3_Q_EMPTY 1
#define FA3_K_FULL(st) (2 + (st))
#define FA3_V_FULL(st) (2 + FA3_STAGES + (st))
#define FA3_K_EMPTY(st) (2 + 2 * FA3_STAGES + (st))
#define FA3_V_EMPTY(st) (2 + 3 * FA3_STAGES + (st))
#define FA3_BARRIERS (2 + 4 * FA3_STAGES)

// One work item: 128 query rows of one (batch, head). Items are numbered row block fastest,
// so the blocks running at once mostly share a head's K and V in L2; causal row blocks run in
// reverse order, the longest (most key tiles) first.
struct Fa3Item {
    u32 m0, batch, head, tiles;
};
__device__ __forceinline__ Fa3Item fa3_item(u32 item, u32 seq, u32 heads, u32 causal) {
    const u32 blocks = seq / FA3_BLOCK_M;
    const u32 m_block = causal ? blocks - 1 - item % blocks : item % blocks;
    const u32 bh = item / blocks;
    return {m_block * FA3_BLOCK_M, bh / heads, bh % heads, causal ? m_block + 1 : seq / FA3_BLOCK_N};
}

// One consumer warpgroup (`cw` 0 or 1: rows m0 + 64·cw … of each item). `kv` counts K/V tiles
// through the ring across items, `n` the items, both as the producer counts them.
template <bool BF16>
__device__ __forceinline__ void fa3_consumer(u32 sq, u32 sk, u32 sv, u32 bar0, u32 cw, u16* __restrict__ o, u32 seq,
                                             u32 heads, u32 items, u64 o_batch_stride, u64 o_head_stride,
                                             u64 o_row_stride, float scale_log2, u32 causal) {
#define BAR(i) (bar0 + 8 * (i))
    const u32 tid = threadIdx.x % 128, warp = tid / 32, lane = tid % 32;
    const u32 q_rows = sq + cw * 64 * 128;
    const u32 key_lane = 2 * (lane % 4);
    float acc[FA_HEAD_DIM / 8][4], s[FA3_BLOCK_N / 8][4], rescale[2];
    u32 p[FA3_BLOCK_N / 16][4];

    // Ping-pong: each GEMM issue slot is named_sync(own) … named_arrive(other's); consumer 0
    // goes first. Both consumers have tiles + 1 slots per item; consumer 1 skips its very last
    // arrival, which nobody would wait for.
    if (cw == 1) named_arrive(1);
    u32 kv = 0, n = 0;
    for (u32 item = blockIdx.x; item < items; item += gridDim.x, ++n) {
        const Fa3Item it = fa3_item(item, seq, heads, causal);
        const u32 tiles = it.tiles, last_item = item + gridDim.x >= items;
        // This thread's rows (and rows + 8).
        const u32 row0 = it.m0 + cw * 64 + warp * 16 + lane / 4;
#pragma unroll
        for (int i = 0; i < FA_HEAD_DIM / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
        float row_max[2] = {negative_infinity(), negative_infinity()}, row_sum[2] = {0.0f, 0.0f};

        mbar_wait(BAR(FA3_Q_FULL), n & 1);
        {
            const u32 st = kv % FA3_STAGES;
            mbar_wait(BAR(FA3_K_FULL(st)), (kv / FA3_STAGES) & 1);
            named_sync(1 + cw);
            fa3_qk<BF16>(s, q_rows, sk + st * FA3_TILE_BYTES);
            named_arrive(2 - cw);
            wg_wait<0>();
            fence_regs(s);
            if (lane == 0) {
                mbar_arrive(BAR(FA3_K_EMPTY(st)));
                if (tiles == 1) mbar_arrive(BAR(FA3_Q_EMPTY));
            }
        }
        if (causal && tiles == 1) mask_future(s, key_lane, row0);
        online_softmax_step<BF16, FA3_BLOCK_N / 8>(s, row_max, row_sum, scale_log2, rescale);
        fa3_pack_p(p, s);

        for (u32 j = 1; j < tiles; ++j) {
            const u32 t = kv + j, st = t % FA3_STAGES, prev = (t - 1) % FA3_STAGES;
            mbar_wait(BAR(FA3_K_FULL(st)), (t / FA3_STAGES) & 1);
            named_sync(1 + cw);
            fa3_qk<BF16>(s, q_rows, sk + st * FA3_TILE_BYTES);
            mbar_wait(BAR(FA3_V_FULL(prev)), ((t - 1) / FA3_STAGES) & 1);
            fa3_pv<BF16>(acc, p, sv + prev * FA3_TILE_BYTES);
            named_arrive(2 - cw);
            // Groups complete in order: S of tile j first, while P·V of tile j − 1 may still run.
            wg_wait<1>();
            fence_regs(s);
            if (lane == 0) {
                mbar_arrive(BAR(FA3_K_EMPTY(st)));
                // The item's last S product is done with Q: the next item's may load.
                if (j == tiles - 1) mbar_arrive(BAR(FA3_Q_EMPTY));
            }
            if (causal && j == tiles - 1) mask_future(s, j * FA3_BLOCK_N + key_lane, row0);
            online_softmax_step<BF16, FA3_BLOCK_N / 8>(s, row_max, row_sum, scale_log2, rescale);
            wg_wait<0>();
            fence_regs(acc);
            if (lane == 0) mbar_arrive(BAR(FA3_V_EMPTY(prev)));
            rescale_rows(acc, rescale);
            fence_regs(acc);
            fa3_pack_p(p, s);
        }

        const u32 t = kv + tiles - 1, last = t % FA3_STAGES;
        mbar_wait(BAR(FA3_V_FULL(last)), (t / FA3_STAGES) & 1);
        named_sync(1 + cw);
        fa3_pv<BF16>(acc, p, sv + last * FA3_TILE_BYTES);
        if (cw == 0 || !last_item) named_arrive(2 - cw);
        wg_wait<0>();
        fence_regs(acc);
        if (lane == 0) mbar_arrive(BAR(FA3_V_EMPTY(last)));
        kv += tiles;

        // The output, while the other consumer's GEMMs and the producer's next loads proceed.
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float total = row_sum[r];
            total += __shfl_xor_sync(0xffffffffu, total, 1);
            total += __shfl_xor_sync(0xffffffffu, total, 2);
            inv[r] = 1.0f / total;
        }
        u16* o0 = o + it.batch * o_batch_stride + it.head * o_head_stride + (u64)row0 * o_row_stride + key_lane;
        u16* o1 = o0 + 8 * o_row_stride;
#pragma unroll
        for (int i = 0; i < FA_HEAD_DIM / 8; ++i) {
            *(u32*)(o0 + i * 8) = pack_halves<BF16>(acc[i][0] * inv[0], acc[i][1] * inv[0]);
            *(u32*)(o1 + i * 8) = pack_halves<BF16>(acc[i][2] * inv[1], acc[i][3] * inv[1]);
        }
    }
#undef BAR
}

// Q, K, V are read through tensor maps over (column, row, head, batch); O is written at
// b·o_batch_stride + h·o_head_stride + r·o_row_stride + c. K/V head = head / kv_group.
// Persistent: each block (one per SM) takes items blockIdx.x, + gridDim.x, …, so the producer
// loads the next item's Q and first K/V tiles while the consumers finish the current one.
template <bool BF16>
__device__ void flash_forward_fa3(const TensorMap* map_q, const TensorMap* map_k, const TensorMap* map_v,
                                  u16* __restrict__ o, u32 seq, u32 heads, u32 kv_group, u32 items,
                                  u64 o_batch_stride, u64 o_head_stride, u64 o_row_stride, float scale_log2,
                                  u32 causal) {
    extern __shared__ __align__(1024) u8 smem_fa3[];
    __shared__ __align__(8) u64 barriers[FA3_BARRIERS];
    const u32 sq = (shared_address(smem_fa3) + 1023) & ~1023u;
    const u32 sk = sq + FA3_TILE_BYTES;
    const u32 sv = sk + FA3_STAGES * FA3_TILE_BYTES;
    const u32 bar0 = shared_address(barriers);
#define BAR(i) (bar0 + 8 * (i))
    const u32 wg = threadIdx.x / 128;

    if (threadIdx.x == 0) {
        mbar_init(BAR(FA3_Q_FULL), 1);
        // Released by each of the 8 consumer warps, as are the K and V stages.
        mbar_init(BAR(FA3_Q_EMPTY), 8);
#pragma unroll
        for (int st = 0; st < FA3_STAGES; ++st) {
            mbar_init(BAR(FA3_K_FULL(st)), 1);
            mbar_init(BAR(FA3_V_FULL(st)), 1);
            mbar_init(BAR(FA3_K_EMPTY(st)), 8);
            mbar_init(BAR(FA3_V_EMPTY(st)), 8);
        }
        // The copy engine (async proxy) must see the initialised barriers.
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
        if (threadIdx.x == 0) {
            u32 kv = 0, n = 0;
            for (u32 item = blockIdx.x; item < items; item += gridDim.x, ++n) {
                const Fa3Item it = fa3_item(item, seq, heads, causal);
                const u32 kv_head = it.head / kv_group;
                // A buffer is refilled once all 8 consumer warps released its previous contents.
                if (n > 0) mbar_wait(BAR(FA3_Q_EMPTY), (n - 1) & 1);
                tma_load_tile(sq, map_q, BAR(FA3_Q_FULL), it.m0, it.head, it.batch);
                for (u32 j = 0; j < it.tiles; ++j, ++kv) {
                    const u32 st = kv % FA3_STAGES, round = kv / FA3_STAGES;
                    if (round > 0) mbar_wait(BAR(FA3_K_EMPTY(st)), (round - 1) & 1);
                    tma_load_tile(sk + st * FA3_TILE_BYTES, map_k, BAR(FA3_K_FULL(st)), j * FA3_BLOCK_N, kv_head,
                                  it.batch);
                    if (round > 0) mbar_wait(BAR(FA3_V_EMPTY(st)), (round - 1) & 1);
                    tma_load_tile(sv + st * FA3_TILE_BYTES, map_v, BAR(FA3_V_FULL(st)), j * FA3_BLOCK_N, kv_head,
                                  it.batch);
                }
            }
        }
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
        fa3_consumer<BF16>(sq, sk, sv, bar0, wg - 1, o, seq, heads, items, o_batch_stride, o_head_stride,
                           o_row_stride, scale_log2, causal);
    }
#undef BAR
}
#define FLASH_FA3_BODY(BF16)                                                                                 \
    flash_forward_fa3<BF16>(&map_q, &map_k, &map_v, o, seq, heads, kv_group, items, o_batch_stride, o_head_stride, \
                            o_row_stride, scale_log2, causal)
#else
#define FLASH_FA3_BODY(BF16)
#endif

// __launch_bounds__(…, 1) caps registers at entry (168 of 384 threads' share), which setmaxnreg
// needs to move them: 24 for the producer warpgroup, 240 for each consumer.
extern "C" __global__ void __launch_bounds__(FA3_THREADS, 1)
    flash_attention_wgmma_f16(const __grid_constant__ TensorMap map_q, const __grid_constant__ TensorMap map_k,
                              const __grid_constant__ TensorMap map_v, u16* o, u32 seq, u32 heads, u32 kv_group,
                              u32 items, u64 o_batch_stride, u64 o_head_stride, u64 o_row_stride, float scale_log2, u32 causal) {
    FLASH_FA3_BODY(false);
}
extern "C" __global__ void __launch_bounds__(FA3_THREADS, 1)
    flash_attention_wgmma_bf16(const __grid_constant__ TensorMap map_q, const __grid_constant__ TensorMap map_k,
                               const __grid_constant__ TensorMap map_v, u16* o, u32 seq, u32 heads, u32 kv_group,
                               u32 items, u64 o_batch_stride, u64 o_head_stride, u64 o_row_stride, float scale_log2, u32 causal) {
    FLASH_FA3_BODY(true);
}
