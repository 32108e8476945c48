// Arithmetic-intensity sweep: each float is loaded once, put through `fmas` dependent
// multiply-adds, stored once. Four independent chains per thread (the float4 lanes) and a
// full-occupancy grid hide the FMA latency, so at large `fmas` the kernel reaches the FP32
// ceiling while its traffic stays fixed.

extern "C" __global__ void intensity_sweep(float4* __restrict__ data, u64 n4, u32 fmas, float a, float b) {
    for (u64 i = grid_thread(); i < n4; i += grid_stride()) {
        float4 v = data[i];
#pragma unroll 8
        for (u32 f = 0; f < fmas; ++f) {
            v.x = fmaf(v.x, a, b);
            v.y = fmaf(v.y, a, b);
            v.z = fmaf(v.z, a, b);
            v.w = fmaf(v.w, a, b);
        }
        data[i] = v;
    }
}
