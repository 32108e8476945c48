// Seeded random fill on the device: every input is generated where it is used, so a 14 GB
// weight set costs milliseconds instead of a host loop and a PCIe copy. Verification reads
// the values back from the device, so the host never has to reproduce this generator.

__device__ __forceinline__ u64 mix64(u64 z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// An odd 24-bit integer minus 2^23, times `scale` (a power of two): exact in f32, never zero,
// uniform over (-scale·2^23, scale·2^23).
__device__ __forceinline__ float random_value(u64 seed, u64 i, float scale) {
    const u32 t = ((u32)(mix64(seed ^ mix64(i)) >> 40)) | 1u;
    return (float)((int)t - (1 << 23)) * scale;
}

extern "C" __global__ void fill_random_f32(float* out, u64 n, u64 seed, float scale) {
    for (u64 i = grid_thread(); i < n; i += grid_stride()) out[i] = random_value(seed, i, scale);
}

// Bandwidth arrays: offset + value, computed in f64 so that 0.5 ≤ x < 1.5 is exact.
extern "C" __global__ void fill_random_f64(double* out, u64 n, u64 seed, double offset, float scale) {
    for (u64 i = grid_thread(); i < n; i += grid_stride())
        out[i] = offset + (double)random_value(seed, i, scale);
}

extern "C" __global__ void fill_random_f16(u16* out, u64 n, u64 seed, float scale) {
    for (u64 i = grid_thread(); i < n; i += grid_stride()) out[i] = f32_to_f16(random_value(seed, i, scale));
}

extern "C" __global__ void fill_random_bf16(u16* out, u64 n, u64 seed, float scale) {
    for (u64 i = grid_thread(); i < n; i += grid_stride()) out[i] = f32_to_bf16(random_value(seed, i, scale));
}

// FP8 E4M3 with saturation (sm_89+): the pair conversion puts its second operand in the low byte.
extern "C" __global__ void fill_random_e4m3(u8* out, u64 n, u64 seed, float scale) {
    for (u64 i = grid_thread(); i < n; i += grid_stride()) {
        const float v = random_value(seed, i, scale);
        u16 pair;
        asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(v));
        out[i] = (u8)(pair & 0xff);
    }
}
