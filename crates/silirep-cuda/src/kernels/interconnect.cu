// Known inputs for the interconnect kernels: element i of rank r holds 1 + (i + 3r) mod 13, a
// small positive integer, so any sum of up to 19 ranks is exact in bf16 (8 significant bits)
// and f32 and a collective's output can be checked exactly against collectives.rs's
// `pattern_value`. Positive and never zero, so an output left unwritten (poisoned to −1)
// or summed twice cannot pass.

extern "C" __global__ void fill_pattern_f32(float* out, u64 n, u64 rank) {
    for (u64 i = grid_thread(); i < n; i += grid_stride())
        out[i] = (float)(1 + (i + 3 * rank) % 13);
}

extern "C" __global__ void fill_pattern_bf16(u16* out, u64 n, u64 rank) {
    for (u64 i = grid_thread(); i < n; i += grid_stride())
        out[i] = f32_to_bf16((float)(1 + (i + 3 * rank) % 13));
}

// Peer copy by the SMs (the alternative to the copy engines' cuMemcpyPeerAsync): run on the
// source GPU with the destination mapped by peer access, each thread reads four 16-byte
// vectors from local memory before writing them over the link, so several writes are in
// flight per thread. `bytes` is a multiple of 4; the last bytes % 16 go word by word.
extern "C" __global__ void peer_copy_push(const uint4* __restrict__ src, uint4* __restrict__ dst, u64 bytes) {
    const u64 vectors = bytes / 16;
    const u64 stride = grid_stride();
    u64 i = grid_thread();
    for (; i + 3 * stride < vectors; i += 4 * stride) {
        const uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
        dst[i] = a;
        dst[i + stride] = b;
        dst[i + 2 * stride] = c;
        dst[i + 3 * stride] = d;
    }
    for (; i < vectors; i += stride) dst[i] = src[i];
    const u64 words = bytes / 4;
    for (u64 w = vectors * 4 + grid_thread(); w < words; w += stride)
        ((u32*)dst)[w] = ((const u32*)src)[w];
}
