// STREAM-style kernels over f64 arrays with 16-byte (double2) accesses. Read, write and triad
// run a persistent grid sized to the SM count (full occupancy), each thread keeping four
// independent 16-byte loads in flight per step of its loop; copy runs one block per tile
// (see bandwidth_copy).

#define BW_UNROLL 4

// Blocks walk tiles of BW_UNROLL·blockDim consecutive double2, advancing by the grid: each
// block's four loads in flight are contiguous 4 KiB runs (DRAM-page friendly). The last,
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

// Each block writes its partial sum, so the loads cannot be elided; the host adds the
// partials (a few thousand values) when verifying.
extern "C" __global__ void bandwidth_read(const double2* __restrict__ a, u64 n2, double* __restrict__ partials) {
    __shared__ double scratch[32];
    double s0 = 0.0, s1 = 0.0;
    const u64 full = n2 / bw_tile();
    for (u64 t = blockIdx.x; t < full; t += gridDim.x) {
        const u64 base = t * bw_tile() + threadIdx.x;
        double2 v[BW_UNROLL];
#pragma unroll
        for (int u = 0; u < BW_UNROLL; ++u) v[u] = a[base + u * blockDim.x];
#pragma unroll
        for (int u = 0; u < BW_UNROLL; ++u) {
            s0 += v[u].x;
            s1 += v[u].y;
        }
    }
    for (u64 i = full * bw_tile() + grid_thread(); i < n2; i += grid_stride()) {
        const double2 v = a[i];
        s0 += v.x;
        s1 += v.y;
    }
    const double total = block_sum<double>(s0 + s1, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void bandwidth_write(double2* __restrict__ a, u64 n2, double value) {
    const double2 v = make_double2(value, value);
    const u64 full = n2 / bw_tile();
    for (u64 t = blockIdx.x; t < full; t += gridDim.x) {
        const u64 base = t * bw_tile() + threadIdx.x;
#pragma unroll
        for (int u = 0; u < BW_UNROLL; ++u) a[base + u * blockDim.x] = v;
    }
    for (u64 i = full * bw_tile() + grid_thread(); i < n2; i += grid_stride()) a[i] = v;
}

// Copy is launched differently from the others: one block per tile of COPY_UNROLL·blockDim
// double2 (8 KiB), a grid of n2 / tile blocks rather than a persistent grid-stride loop. On an
// H100 this moved copy from 2.84 to 3.0 TB/s at 1–2 GiB (read and write alone were not
// limited by the persistent grid); hints (.cs, .nc.L2::256B) and deeper unrolling did not help.
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

