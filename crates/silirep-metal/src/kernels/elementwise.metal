// Element-wise pieces of a transformer layer. Each is memory-bound and small next to the
// GEMMs; they exist so the layer is a real layer (and its GEMM inputs real activations).
#include <metal_stdlib>
using namespace metal;

struct ElementwiseParams {
    uint rows;
    uint columns;        // output columns
    uint input_stride;   // elements between rows of the input(s)
    uint output_stride;  // elements between rows of the output
};

// out = a + b (residual connection), all three with the same shape and strides.
template <typename T>
static inline void add_body(device const T* a, device const T* b, device T* out,
                            constant ElementwiseParams& p, uint2 position) {
    if (position.x >= p.columns || position.y >= p.rows) {
        return;
    }
    const size_t in_index = size_t(position.y) * p.input_stride + position.x;
    const size_t out_index = size_t(position.y) * p.output_stride + position.x;
    out[out_index] = T(float(a[in_index]) + float(b[in_index]));
}

// SwiGLU: each input row holds [gate | up] (2·columns values); out = silu(gate) · up.
template <typename T>
static inline void swiglu_body(device const T* gate_up, device T* out,
                               constant ElementwiseParams& p, uint2 position) {
    if (position.x >= p.columns || position.y >= p.rows) {
        return;
    }
    device const T* row = gate_up + size_t(position.y) * p.input_stride;
    const float gate = float(row[position.x]);
    const float up = float(row[p.columns + position.x]);
    const float silu = gate / (1.0f + exp(-gate));
    out[size_t(position.y) * p.output_stride + position.x] = T(silu * up);
}

// SwiGLU backward: from [gate | up] rows and the output gradient, writes [d_gate | d_up]
// rows (same layout as the input). columns = intermediate size, input_stride = row stride of
// gate_up and grad_gate_up, output_stride = row stride of grad_output.
template <typename T>
static inline void swiglu_backward_body(device const T* gate_up, device const T* grad_output,
                                        device T* grad_gate_up, constant ElementwiseParams& p,
                                        uint2 position) {
    if (position.x >= p.columns || position.y >= p.rows) {
        return;
    }
    const size_t row = size_t(position.y) * p.input_stride;
    const float gate = float(gate_up[row + position.x]);
    const float up = float(gate_up[row + p.columns + position.x]);
    const float grad = float(grad_output[size_t(position.y) * p.output_stride + position.x]);
    const float sigmoid = 1.0f / (1.0f + exp(-gate));
    const float silu = gate * sigmoid;
    grad_gate_up[row + position.x] = T(grad * up * sigmoid * (1.0f + gate * (1.0f - sigmoid)));
    grad_gate_up[row + p.columns + position.x] = T(grad * silu);
}

kernel void add_f32(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                    device float* out [[buffer(2)]], constant ElementwiseParams& p [[buffer(3)]],
                    uint2 position [[thread_position_in_grid]]) {
    add_body(a, b, out, p, position);
}

kernel void add_f16(device const half* a [[buffer(0)]], device const half* b [[buffer(1)]],
                    device half* out [[buffer(2)]], constant ElementwiseParams& p [[buffer(3)]],
                    uint2 position [[thread_position_in_grid]]) {
    add_body(a, b, out, p, position);
}

kernel void swiglu_f32(device const float* gate_up [[buffer(0)]], device float* out [[buffer(1)]],
                       constant ElementwiseParams& p [[buffer(2)]],
                       uint2 position [[thread_position_in_grid]]) {
    swiglu_body(gate_up, out, p, position);
}

kernel void swiglu_f16(device const half* gate_up [[buffer(0)]], device half* out [[buffer(1)]],
                       constant ElementwiseParams& p [[buffer(2)]],
                       uint2 position [[thread_position_in_grid]]) {
    swiglu_body(gate_up, out, p, position);
}

kernel void swiglu_backward_f32(device const float* gate_up [[buffer(0)]],
                                device const float* grad_output [[buffer(1)]],
                                device float* grad_gate_up [[buffer(2)]],
                                constant ElementwiseParams& p [[buffer(3)]],
                                uint2 position [[thread_position_in_grid]]) {
    swiglu_backward_body(gate_up, grad_output, grad_gate_up, p, position);
}

kernel void swiglu_backward_f16(device const half* gate_up [[buffer(0)]],
                                device const half* grad_output [[buffer(1)]],
                                device half* grad_gate_up [[buffer(2)]],
                                constant ElementwiseParams& p [[buffer(3)]],
                                uint2 position [[thread_position_in_grid]]) {
    swiglu_backward_body(gate_up, grad_output, grad_gate_up, p, position);
}
