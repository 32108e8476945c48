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
