// STREAM-style kernels over f64 arrays with 16-byte (double2) accesses. Read, write and copy
// run one block per tile of consecutive double2; triad runs a persistent grid sized to the SM
// count (full occupancy), each thread keeping four independent 16-byte loads in flight per
// step of its loop. A second copy goes through the TMA (bandwidth_copy_tma).

#define BW_UNROLL 4

// Triad's blocks walk tiles of BW_UNROLL·blockDim consecutive double2, advancing by the grid:
// each block's four loads in flight are contiguous 4 KiB runs (DRAM-page friendly). The last,
// partial tile is finished by a plain grid-stride loop.
__device__ __forceinline__ u64 bw_tile() { return (u64)BW_UNROLL * blockDim.x; }

// Streaming (evict-first) accesses for data touched exactly once: they keep the copy and
// triad streams from displacing each other's lines in L2 while writes drain.
__device__ __forceinline__ double2 load_streaming(const double2* p) {
    double2 v;
    asm volatile("ld.global.cs.v2.f64 {%0, %1}, [%2];" : "=d"(v.x), "=d"(v.y) : "l"(p));
    return v;
}
__device__ __forceinline__ void store_streaming(double2* p, double2 v) {
    asm volatile("st.global.cs.v2.f64 [%0], {%1, %2};" ::"l"(p), "d"(v.x), "d"(v.y) : "memory");
}

// Read and write walk tiles of `U`·blockDim consecutive double2 — each thread's U accesses in
// flight are contiguous runs of blockDim·16 bytes (DRAM-page friendly) — and advance by the
// grid, so any grid covers the array; the host launches one block per tile (bandwidth.rs says
// why). The last, partial tile is finished by a plain grid-stride loop.
#define READ_UNROLL 8
#define WRITE_UNROLL 2

// Data read exactly once: no L1 allocation.
__device__ __forceinline__ double2 load_once(const double2* p) {
    double2 v;
    asm volatile("ld.global.nc.L1::no_allocate.v2.f64 {%0, %1}, [%2];" : "=d"(v.x), "=d"(v.y) : "l"(p));
    return v;
}

// Each block writes its partial sum (`partials` holds one per block of the grid), so the loads
// cannot be elided; the host adds the partials when verifying.
extern "C" __global__ void bandwidth_read(const double2* __restrict__ a, u64 n2, double* __restrict__ partials) {
    __shared__ double scratch[32];
    double s0 = 0.0, s1 = 0.0;
    const u64 tile = (u64)READ_UNROLL * blockDim.x, full = n2 / tile;
    for (u64 t = blockIdx.x; t < full; t += gridDim.x) {
        const u64 base = t * tile + threadIdx.x;
        double2 v[READ_UNROLL];
#pragma unroll
        for (int u = 0; u < READ_UNROLL; ++u) v[u] = load_once(a + base + u * blockDim.x);
#pragma unroll
        for (int u = 0; u < READ_UNROLL; ++u) {
            s0 += v[u].x;
            s1 += v[u].y;
        }
    }
    for (u64 i = full * tile + grid_thread(); i < n2; i += grid_stride()) {
        const double2 v = a[i];
        s0 += v.x;
        s1 += v.y;
    }
    const double total = block_sum<double>(s0 + s1, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void bandwidth_write(double2* __restrict__ a, u64 n2, double value) {
    const double2 v = make_double2(value, value);
    const u64 tile = (u64)WRITE_UNROLL * blockDim.x, full = n2 / tile;
    for (u64 t = blockIdx.x; t < full; t += gridDim.x) {
        const u64 base = t * tile + threadIdx.x;
#pragma unroll
        for (int u = 0; u < WRITE_UNROLL; ++u) a[base + u * blockDim.x] = v;
    }
    for (u64 i = full * tile + grid_thread(); i < n2; i += grid_stride()) a[i] = v;
}

// Copy, one block per tile of COPY_UNROLL·blockDim double2 (8 KiB). On an H100 this moved copy
// from 2.84 to 3.0 TB/s at 1–2 GiB over a persistent grid-stride loop; hints (.cs,
// .nc.L2::256B) and deeper unrolling did not help, nor on an H200 (4.12 TB/s at 1 GiB).
#define COPY_UNROLL 2
extern "C" __global__ void bandwidth_copy(const double2* __restrict__ a, double2* __restrict__ b, u64 n2) {
    const u64 base = (u64)blockIdx.x * COPY_UNROLL * blockDim.x + threadIdx.x;
    if (base + (COPY_UNROLL - 1) * blockDim.x < n2) {
        double2 v[COPY_UNROLL];
#pragma unroll
        for (int u = 0; u < COPY_UNROLL; ++u) v[u] = a[base + u * blockDim.x];
#pragma unroll
        for (int u = 0; u < COPY_UNROLL; ++u) b[base + u * blockDim.x] = v[u];
    } else {
        for (u64 i = base; i < n2; i += blockDim.x) b[i] = a[i];
    }
}

// Copy through the Tensor Memory Accelerator (sm_90): one thread per block moves chunks of
// TMA_CHUNK bytes global → shared → global with bulk copies, TMA_STAGES chunks in flight, no
// data through registers. Blocks take chunks `blockIdx.x + i·gridDim.x`. A load completes on
// its stage's mbarrier; a stage is refilled once the store that read it has finished reading.
#define TMA_CHUNK 12288
#define TMA_STAGES 3
#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ void tma_load(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
__device__ __forceinline__ void tma_wait(u32 bar, u32 parity) {
    asm volatile("{\n.reg .pred done;\nwait:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                 "@!done bra wait;\n}" ::"r"(bar), "r"(parity) : "memory");
}
#endif
extern "C" __global__ void bandwidth_copy_tma(const u8* __restrict__ a, u8* __restrict__ b, u64 bytes) {
#if __CUDA_ARCH__ >= 900
    __shared__ __align__(128) u8 stage[TMA_STAGES][TMA_CHUNK];
    __shared__ __align__(8) u64 bars[TMA_STAGES];
    if (threadIdx.x != 0) return;
    const u32 buf0 = (u32)__cvta_generic_to_shared(&stage[0][0]);
    const u32 bar0 = (u32)__cvta_generic_to_shared(&bars[0]);
    for (int s = 0; s < TMA_STAGES; ++s)
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar0 + 8 * s) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    const u64 chunks = (bytes + TMA_CHUNK - 1) / TMA_CHUNK;
    // This block's i-th chunk, its size (the array's last chunk may be short).
    auto chunk = [&](u64 i) { return (u64)blockIdx.x + i * gridDim.x; };
    auto size = [&](u64 c) { return (u32)min((u64)TMA_CHUNK, bytes - c * TMA_CHUNK); };
    u64 mine = chunks > blockIdx.x ? (chunks - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
    for (u64 i = 0; i < TMA_STAGES && i < mine; ++i) {
        const u64 c = chunk(i);
        tma_load(buf0 + i * TMA_CHUNK, a + c * TMA_CHUNK, size(c), bar0 + 8 * i);
    }
    for (u64 i = 0; i < mine; ++i) {
        const u32 s = i % TMA_STAGES;
        const u64 c = chunk(i);
        tma_wait(bar0 + 8 * s, (i / TMA_STAGES) & 1);
        asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;"
                     ::"l"(b + c * TMA_CHUNK), "r"(buf0 + s * TMA_CHUNK), "r"(size(c)) : "memory");
        asm volatile("cp.async.bulk.commit_group;" ::: "memory");
        // Refill the previous iteration's stage once its store has read it, leaving this
        // iteration's store in flight.
        if (i >= 1 && i - 1 + TMA_STAGES < mine) {
            asm volatile("cp.async.bulk.wait_group.read 1;" ::: "memory");
            const u32 p = (i - 1) % TMA_STAGES;
            const u64 next = chunk(i - 1 + TMA_STAGES);
            tma_load(buf0 + p * TMA_CHUNK, a + next * TMA_CHUNK, size(next), bar0 + 8 * p);
        }
    }
    asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
#endif
}

// a = b + q·c
extern "C" __global__ void bandwidth_triad(double2* __restrict__ a, const double2* __restrict__ b,
                                           const double2* __restrict__ c, u64 n2, double q) {
    const u64 full = n2 / bw_tile();
    for (u64 t = blockIdx.x; t < full; t += gridDim.x) {
        const u64 base = t * bw_tile() + threadIdx.x;
        double2 x[BW_UNROLL], y[BW_UNROLL];
#pragma unroll
        for (int u = 0; u < BW_UNROLL; ++u) {
            x[u] = load_streaming(b + base + u * blockDim.x);
            y[u] = load_streaming(c + base + u * blockDim.x);
        }
#pragma unroll
        for (int u = 0; u < BW_UNROLL; ++u)
            store_streaming(a + base + u * blockDim.x, make_double2(x[u].x + q * y[u].x, x[u].y + q * y[u].y));
    }
    for (u64 i = full * bw_tile() + grid_thread(); i < n2; i += grid_stride()) {
        const double2 x = b[i], y = c[i];
        a[i] = make_double2(x.x + q * y.x, x.y + q * y.y);
    }
}

