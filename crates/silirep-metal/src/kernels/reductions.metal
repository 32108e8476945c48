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
    value = combine.reduce(value);
    if (lane == 0) {
        scratch[simd_index] = value;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float total = combine.reduce(lane < simds ? scratch[lane] : identity);
    // Every SIMD group computed the same total; the barrier keeps scratch alive until all
    // have read it, so the next reduction can reuse it.
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return total;
}

struct SumCombine {
    float reduce(float v) const { return simd_sum(v); }
};
struct MaxCombine {
    float reduce(float v) const { return simd_max(v); }
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

// Backward of rms_norm plus a residual gradient:
//   dx = residual_grad + r·g − r³·x·(g·x)/n,   r = 1/sqrt(mean(x²) + ε).
template <typename T>
static inline void rms_norm_backward_body(device const T* input, device const T* grad_normed,
                                          device const T* residual_grad, device T* grad_input,
                                          constant RowParams& p, uint row, uint tid,
                                          uint threads, uint lane, uint simd_index, uint simds,
                                          threadgroup float* scratch) {
    const size_t base = size_t(row) * p.row_stride;
    float squares = 0.0f;
    float grad_dot_input = 0.0f;
    for (uint c = tid; c < p.columns; c += threads) {
        const float x = float(input[base + c]);
        squares += x * x;
        grad_dot_input += float(grad_normed[base + c]) * x;
    }
    squares = threadgroup_reduce(squares, scratch, lane, simd_index, simds, SumCombine(), 0.0f);
    grad_dot_input =
        threadgroup_reduce(grad_dot_input, scratch, lane, simd_index, simds, SumCombine(), 0.0f);
    const float r = rsqrt(squares / float(p.columns) + p.epsilon);
    const float correction = r * r * r * grad_dot_input / float(p.columns);
    for (uint c = tid; c < p.columns; c += threads) {
        const float x = float(input[base + c]);
        const float g = float(grad_normed[base + c]);
        grad_input[base + c] = T(float(residual_grad[base + c]) + r * g - correction * x);
    }
}

struct SoftmaxBackwardParams {
    uint columns;       // keys per row (sequence length); probability rows are dense
    uint head_dim;
    uint o_row_stride;  // elements between consecutive tokens of O and dO
    float scale;        // the attention scale, folded into dS so dQ and dK GEMMs need no alpha
};

// Softmax backward for one attention head, in place over dP:
//   dS = scale · P ⊙ (dP − D),   D_i = Σ_d dO_id · O_id  (= Σ_j P_ij · dP_ij).
template <typename T>
static inline void attention_softmax_backward_body(
    device const T* probabilities, device T* grad_scores, device const T* grad_output,
    device const T* output, constant SoftmaxBackwardParams& p, uint row, uint tid, uint threads,
    uint lane, uint simd_index, uint simds, threadgroup float* scratch) {
    const size_t o_base = size_t(row) * p.o_row_stride;
    float partial = 0.0f;
    for (uint d = tid; d < p.head_dim; d += threads) {
        partial += float(grad_output[o_base + d]) * float(output[o_base + d]);
    }
    const float row_term =
        threadgroup_reduce(partial, scratch, lane, simd_index, simds, SumCombine(), 0.0f);
    const size_t base = size_t(row) * p.columns;
    for (uint c = tid; c < p.columns; c += threads) {
        const float prob = float(probabilities[base + c]);
        grad_scores[base + c] = T(p.scale * prob * (float(grad_scores[base + c]) - row_term));
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

kernel void rms_norm_backward_f32(device const float* input [[buffer(0)]],
                                  device const float* grad_normed [[buffer(1)]],
                                  device const float* residual_grad [[buffer(2)]],
                                  device float* grad_input [[buffer(3)]],
                                  constant RowParams& p [[buffer(4)]], ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    rms_norm_backward_body(input, grad_normed, residual_grad, grad_input, p, row, tid, threads,
                           lane, simd_index, simds, scratch);
}

kernel void rms_norm_backward_f16(device const half* input [[buffer(0)]],
                                  device const half* grad_normed [[buffer(1)]],
                                  device const half* residual_grad [[buffer(2)]],
                                  device half* grad_input [[buffer(3)]],
                                  constant RowParams& p [[buffer(4)]], ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    rms_norm_backward_body(input, grad_normed, residual_grad, grad_input, p, row, tid, threads,
                           lane, simd_index, simds, scratch);
}

kernel void attention_softmax_backward_f32(device const float* probabilities [[buffer(0)]],
                                           device float* grad_scores [[buffer(1)]],
                                           device const float* grad_output [[buffer(2)]],
                                           device const float* output [[buffer(3)]],
                                           constant SoftmaxBackwardParams& p [[buffer(4)]],
                                           ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    attention_softmax_backward_body(probabilities, grad_scores, grad_output, output, p, row, tid,
                                    threads, lane, simd_index, simds, scratch);
}

kernel void attention_softmax_backward_f16(device const half* probabilities [[buffer(0)]],
                                           device half* grad_scores [[buffer(1)]],
                                           device const half* grad_output [[buffer(2)]],
                                           device const half* output [[buffer(3)]],
                                           constant SoftmaxBackwardParams& p [[buffer(4)]],
                                           ROW_KERNEL_ARGS) {
    threadgroup float scratch[32];
    attention_softmax_backward_body(probabilities, grad_scores, grad_output, output, p, row, tid,
                                    threads, lane, simd_index, simds, scratch);
}
