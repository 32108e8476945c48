// Row-wise kernels shared by attention and the transformer layer: one threadgroup per row,
// partial results combined with SIMD-group reductions and then across SIMD groups through
// threadgroup memory. Accumulation is always in float, whatever the storage type.
#include <metal_stdlib>
using namespace metal;

struct RowParams {
    uint columns;     // elements per row
    uint row_stride;  // elements between the starts of consecutive rows
    float epsilon;    // rms_norm only
    uint unused;
};

// Reduces one value per thread to one value per threadgroup; every thread gets the result.
template <typename Combine>
static inline float threadgroup_reduce(float value, threadgroup float* scratch, uint lane,
                                       uint simd_index, uint simds, Combine combine,
                                       float identity) {
    value = combine.simd(value);
    if (lane == 0) {
        scratch[simd_index] = value;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float total = combine.simd(lane < simds ? scratch[lane] : identity);
    // Every SIMD group computed the same total; the barrier keeps scratch alive until all
    // have read it, so the next reduction can reuse it.
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return total;
}

struct SumCombine {
    float simd(float v) const { return simd_sum(v); }
};
struct MaxCombine {
    float simd(float v) const { return simd_max(v); }
};

// Numerically safe softmax over each row, in place: subtract the row maximum, exponentiate,
// divide by the sum. The attention scale is applied by the Q·Kᵀ GEMM (its alpha).
template <typename T>
static inline void softmax_rows_body(device T* scores, constant RowParams& p, uint row,
                                     uint tid, uint threads, uint lane, uint simd_index,
                                     uint simds, threadgroup float* scratch) {
    device T* values = scores + size_t(row) * p.row_stride;
    float row_max = -FLT_MAX;
    for (uint c = tid; c < p.columns; c += threads) {
        row_max = max(row_max, float(values[c]));
    }
    row_max = threadgroup_reduce(row_max, scratch, lane, simd_index, simds, MaxCombine(), -FLT_MAX);
    float row_sum = 0.0f;
    for (uint c = tid; c < p.columns; c += threads) {
        row_sum += exp(float(values[c]) - row_max);
    }
    row_sum = threadgroup_reduce(row_sum, scratch, lane, simd_index, simds, SumCombine(), 0.0f);
    const float inverse_sum = 1.0f / row_sum;
    for (uint c = tid; c < p.columns; c += threads) {
        values[c] = T(exp(float(values[c]) - row_max) * inverse_sum);
    }
}

// x / sqrt(mean(x²) + ε), without a learned gain (a gain of ones changes nothing measured).
template <typename T>
static inline void rms_norm_body(device const T* input, device T* output, constant RowParams& p,
                                 uint row, uint tid, uint threads, uint lane, uint simd_index,
                                 uint simds, threadgroup float* scratch) {
    device const T* in_row = input + size_t(row) * p.row_stride;
    device T* out_row = output + size_t(row) * p.row_stride;
    float squares = 0.0f;
    for (uint c = tid; c < p.columns; c += threads) {
        const float v = float(in_row[c]);
        squares += v * v;
    }
    squares = threadgroup_reduce(squares, scratch, lane, simd_index, simds, SumCombine(), 0.0f);
    const float inverse_rms = rsqrt(squares / float(p.columns) + p.epsilon);
    for (uint c = tid; c < p.columns; c += threads) {
        out_row[c] = T(float(in_row[c]) * inverse_rms);
    }
}

#define ROW_KERNEL_ARGS                                              \
    uint row [[threadgroup_position_in_grid]],                       \
    uint tid [[thread_position_in_threadgroup]],                     \
    uint threads [[threads_per_threadgroup]],                        \
    uint lane [[thread_index_in_simdgroup]],                         \
    uint simd_index [[simdgroup_index_in_threadgroup]],              \
    uint simds [[simdgroups_per_threadgroup]]

kernel void softmax_rows_f32(device float* scores [[buffer(0)]],
                             constant RowParams& p [[buffer(1)]], ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    softmax_rows_body(scores, p, row, tid, threads, lane, simd_index, simds, scratch);
}

kernel void softmax_rows_f16(device half* scores [[buffer(0)]],
                             constant RowParams& p [[buffer(1)]], ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    softmax_rows_body(scores, p, row, tid, threads, lane, simd_index, simds, scratch);
}

kernel void rms_norm_f32(device const float* input [[buffer(0)]],
                         device float* output [[buffer(1)]],
                         constant RowParams& p [[buffer(2)]], ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    rms_norm_body(input, output, p, row, tid, threads, lane, simd_index, simds, scratch);
}

kernel void rms_norm_f16(device const half* input [[buffer(0)]],
                         device half* output [[buffer(1)]],
                         constant RowParams& p [[buffer(2)]], ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    rms_norm_body(input, output, p, row, tid, threads, lane, simd_index, simds, scratch);
}
