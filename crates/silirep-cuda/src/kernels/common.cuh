// Shared by every kernel file: prepended by the Rust loader (sources.rs) rather than pulled
// in by an include directive, so NVRTC needs no include path and no CUDA headers at all.
// Half-precision values travel as raw 16-bit patterns; conversions are single PTX
// instructions with round-to-nearest-even, matching the host's `half` crate bit for bit.

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ u16 f32_to_f16(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
template <bool BF16> __device__ __forceinline__ float half_to_f32(u16 h) {
    return BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}
template <bool BF16> __device__ __forceinline__ u16 f32_to_half(float f) {
    return BF16 ? f32_to_bf16(f) : f32_to_f16(f);
}
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000); }

__device__ __forceinline__ u64 grid_thread() { return (u64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 grid_stride() { return (u64)gridDim.x * blockDim.x; }

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
template <typename T> __device__ __forceinline__ T block_sum(T v, T* scratch32) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const u32 warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) scratch32[warp] = v;
    __syncthreads();
    T total = lane < warps ? scratch32[lane] : (T)0;
    for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
    return total;
}
__device__ __forceinline__ float block_max(float v, float* scratch32) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const u32 warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) scratch32[warp] = v;
    __syncthreads();
    float m = lane < warps ? scratch32[lane] : negative_infinity();
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    return m;
}
