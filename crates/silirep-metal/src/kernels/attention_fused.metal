// Fused (flash-attention style) scaled dot-product attention, non-causal: the S×S score
// matrix is never written to memory. One SIMD group (32 lanes) owns one query row; each lane
// holds head_dim/32 of its dimensions. Keys and values stream through threadgroup memory in
// tiles shared by the ROWS_PER_GROUP query rows of a threadgroup, and the softmax is computed
// online (running maximum and running sum, rescaling the accumulator when the maximum grows;
// Milakov & Gimelshein 2018, Dao et al. 2022).
//
// Strides are explicit so the same kernel serves [batch, heads, seq, head_dim] tensors and a
// transformer layer's fused QKV projection output ([tokens, (heads + 2·kv_heads)·head_dim])
// with grouped-query attention (heads_per_kv query heads share one K/V head).
#include <metal_stdlib>
using namespace metal;

struct AttentionParams {
    uint seq_len;
    uint head_dim;        // multiple of 32, at most 32 · MAX_DIMS_PER_LANE
    uint heads_per_kv;
    uint q_row_stride;    // elements between consecutive tokens
    uint kv_row_stride;
    uint o_row_stride;
    uint q_head_stride;   // elements between consecutive heads
    uint kv_head_stride;
    uint o_head_stride;
    uint q_batch_stride;  // elements between consecutive sequences
    uint kv_batch_stride;
    uint o_batch_stride;
    float scale;          // 1/sqrt(head_dim)
    uint unused[3];
};

#define ROWS_PER_GROUP 8u
#define MAX_DIMS_PER_LANE 4u
#define THREADS_PER_GROUP (ROWS_PER_GROUP * 32u)
// Keys per K/V tile: 16 KiB of threadgroup memory for K and V together at head_dim 128
// (32 KiB is the Apple-GPU limit per threadgroup; a smaller footprint lets two threadgroups
// share a core).
#define TILE_KEYS_F16 32u
#define TILE_KEYS_F32 16u

template <typename T, uint TILE_KEYS>
static inline void attention_fused_body(device const T* q, device const T* k, device const T* v,
                                        device T* o, constant AttentionParams& p,
                                        threadgroup T* k_tile, threadgroup T* v_tile,
                                        uint3 group, uint simd_index, uint lane, uint tid) {
    const uint row = group.x * ROWS_PER_GROUP + simd_index;
    const uint head = group.y;
    const uint batch = group.z;
    const uint kv_head = head / p.heads_per_kv;
    const uint dims_per_lane = p.head_dim / 32;
    // Uniform across the SIMD group (one row per group), so simd_sum below is well defined.
    const bool active = row < p.seq_len;

    device const T* q_row = q + size_t(batch) * p.q_batch_stride + size_t(head) * p.q_head_stride
                            + size_t(min(row, p.seq_len - 1)) * p.q_row_stride;
    device const T* k_head = k + size_t(batch) * p.kv_batch_stride + size_t(kv_head) * p.kv_head_stride;
    device const T* v_head = v + size_t(batch) * p.kv_batch_stride + size_t(kv_head) * p.kv_head_stride;

    float q_lane[MAX_DIMS_PER_LANE];
    float accumulator[MAX_DIMS_PER_LANE];
    // Loops over the compile-time MAX_DIMS_PER_LANE (guarded by dims_per_lane) unroll, so
    // q_lane and accumulator stay in registers.
    for (uint e = 0; e < MAX_DIMS_PER_LANE; ++e) {
        q_lane[e] = e < dims_per_lane ? float(q_row[lane + 32 * e]) * p.scale : 0.0f;
        accumulator[e] = 0.0f;
    }
    // Finite start instead of -infinity: fast math may assume no infinities.
    float running_max = -1.0e30f;
    float running_sum = 0.0f;

    for (uint tile_start = 0; tile_start < p.seq_len; tile_start += TILE_KEYS) {
        const uint tile_len = min(TILE_KEYS, p.seq_len - tile_start);
        for (uint index = tid; index < tile_len * p.head_dim; index += THREADS_PER_GROUP) {
            const uint key = index / p.head_dim;
            const uint dim = index - key * p.head_dim;
            const size_t source = size_t(tile_start + key) * p.kv_row_stride + dim;
            k_tile[index] = k_head[source];
            v_tile[index] = v_head[source];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        if (active) {
            for (uint key = 0; key < tile_len; ++key) {
                threadgroup const T* k_row = k_tile + key * p.head_dim;
                threadgroup const T* v_row = v_tile + key * p.head_dim;
                float partial = 0.0f;
                for (uint e = 0; e < MAX_DIMS_PER_LANE; ++e) {
                    if (e < dims_per_lane) {
                        partial = fma(q_lane[e], float(k_row[lane + 32 * e]), partial);
                    }
                }
                const float score = simd_sum(partial);
                const float new_max = max(running_max, score);
                const float correction = exp(running_max - new_max);
                const float weight = exp(score - new_max);
                running_sum = fma(running_sum, correction, weight);
                for (uint e = 0; e < MAX_DIMS_PER_LANE; ++e) {
                    if (e < dims_per_lane) {
                        accumulator[e] = fma(accumulator[e], correction,
                                             weight * float(v_row[lane + 32 * e]));
                    }
                }
                running_max = new_max;
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }

    if (active) {
        device T* o_row = o + size_t(batch) * p.o_batch_stride + size_t(head) * p.o_head_stride
                          + size_t(row) * p.o_row_stride;
        const float inverse_sum = 1.0f / running_sum;
        for (uint e = 0; e < MAX_DIMS_PER_LANE; ++e) {
            if (e < dims_per_lane) {
                o_row[lane + 32 * e] = T(accumulator[e] * inverse_sum);
            }
        }
    }
}

#define ATTENTION_KERNEL_ARGS(T)                                       \
    device const T* q [[buffer(0)]], device const T* k [[buffer(1)]],  \
    device const T* v [[buffer(2)]], device T* o [[buffer(3)]],        \
    constant AttentionParams& p [[buffer(4)]],                         \
    uint3 group [[threadgroup_position_in_grid]],                      \
    uint simd_index [[simdgroup_index_in_threadgroup]],                \
    uint lane [[thread_index_in_simdgroup]],                           \
    uint tid [[thread_index_in_threadgroup]]

kernel void attention_fused_f16(ATTENTION_KERNEL_ARGS(half)) {
    threadgroup half k_tile[TILE_KEYS_F16 * 32 * MAX_DIMS_PER_LANE];
    threadgroup half v_tile[TILE_KEYS_F16 * 32 * MAX_DIMS_PER_LANE];
    attention_fused_body<half, TILE_KEYS_F16>(q, k, v, o, p, k_tile, v_tile, group, simd_index,
                                              lane, tid);
}

kernel void attention_fused_f32(ATTENTION_KERNEL_ARGS(float)) {
    threadgroup float k_tile[TILE_KEYS_F32 * 32 * MAX_DIMS_PER_LANE];
    threadgroup float v_tile[TILE_KEYS_F32 * 32 * MAX_DIMS_PER_LANE];
    attention_fused_body<float, TILE_KEYS_F32>(q, k, v, o, p, k_tile, v_tile, group, simd_index,
                                               lane, tid);
}
