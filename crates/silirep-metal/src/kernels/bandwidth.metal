// STREAM-style bandwidth kernels over float4 vectors (16-byte loads and stores, the widest
// a GPU thread issues in one instruction). Byte counts follow silirep-core's BandwidthOp.
#include <metal_stdlib>
using namespace metal;

struct BandwidthParams {
    uint vector_count;       // float4 elements per array
    uint vectors_per_group;  // contiguous float4 elements each threadgroup reduces (read only)
    float scalar;            // the value written (write) or the triad multiplier
    uint unused;
};

// Each threadgroup sums one contiguous chunk and writes one partial sum: the reduction is
// real work the compiler cannot drop, and a chunk's partial can be checked on the CPU by
// copying just that chunk back.
kernel void bandwidth_read(device const float4* a [[buffer(0)]],
                           device float* partial_sums [[buffer(1)]],
                           constant BandwidthParams& p [[buffer(2)]],
                           uint group [[threadgroup_position_in_grid]],
                           uint thread_in_group [[thread_position_in_threadgroup]],
                           uint threads_per_group [[threads_per_threadgroup]],
                           uint lane [[thread_index_in_simdgroup]],
                           uint simd_index [[simdgroup_index_in_threadgroup]],
                           uint simds_per_group [[simdgroups_per_threadgroup]]) {
    threadgroup float simd_sums[32];
    const uint begin = group * p.vectors_per_group;
    const uint end = min(begin + p.vectors_per_group, p.vector_count);
    float4 sum = 0.0f;
    for (uint i = begin + thread_in_group; i < end; i += threads_per_group) {
        sum += a[i];
    }
    const float thread_sum = simd_sum(sum.x + sum.y + sum.z + sum.w);
    if (lane == 0) {
        simd_sums[simd_index] = thread_sum;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simd_index == 0) {
        const float partial = simd_sum(lane < simds_per_group ? simd_sums[lane] : 0.0f);
        if (lane == 0) {
            partial_sums[group] = partial;
        }
    }
}

kernel void bandwidth_write(device float4* a [[buffer(0)]],
                            constant BandwidthParams& p [[buffer(1)]],
                            uint i [[thread_position_in_grid]]) {
    if (i < p.vector_count) {
        a[i] = float4(p.scalar);
    }
}

kernel void bandwidth_copy(device const float4* a [[buffer(0)]],
                           device float4* b [[buffer(1)]],
                           constant BandwidthParams& p [[buffer(2)]],
                           uint i [[thread_position_in_grid]]) {
    if (i < p.vector_count) {
        b[i] = a[i];
    }
}

// a = b + q·c
kernel void bandwidth_triad(device float4* a [[buffer(0)]],
                            device const float4* b [[buffer(1)]],
                            device const float4* c [[buffer(2)]],
                            constant BandwidthParams& p [[buffer(3)]],
                            uint i [[thread_position_in_grid]]) {
    if (i < p.vector_count) {
        a[i] = fma(float4(p.scalar), c[i], b[i]);
    }
}
