//! Backward pass of the Mistral-shaped layer in `layer.rs`: input gradients and weight
//! gradients of every GEMM, the SwiGLU and RMSNorm derivatives, and attention backward
//! (recomputing the probabilities per head with MPS GEMMs, as flash-attention backward
//! recomputes them, then `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = scale·P ⊙ (dP − D)`,
//! `dQ = dS·K`, `dK = dSᵀ·Q`; the query heads of a K/V group accumulate into its dK, dV).
//!
//! The forward pass runs once in `prepare` to produce the saved activations; only the
//! backward pass is timed. The FLOP count is silirep-core's (twice the forward); the
//! attention part really does 2.5× its forward work (five S×S GEMMs against two), so the
//! attention share of the rate is understated, never inflated.

use super::attention::{row_dispatch, typed};
use super::gpu::{Buffer, Gpu, Storage};
use super::layer::{Dims, RMS_EPSILON, Reader, Scratch, Weights, elementwise, layer_steps};
use super::mps::{GemmOptions, MatrixView};
use super::prepared::{Timed, Workload};
use super::program::{Dispatch, GpuParams, Grid, Step};
use crate::numeric::{self, Checks, Reference};
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, LayerShape, PreparedKernel};
use std::collections::BTreeMap;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SoftmaxBackwardParams {
    columns: u32,
    head_dim: u32,
    o_row_stride: u32,
    scale: f32,
}
// SAFETY: four 4-byte fields, mirrors SoftmaxBackwardParams in reductions.metal.
unsafe impl GpuParams for SoftmaxBackwardParams {}

/// Gradient buffers, named after the forward value they are the gradient of.
struct Gradients {
    output: Buffer,
    activated: Buffer,
    gate_up: Buffer,
    residual_normed: Buffer,
    residual: Buffer,
    attention: Buffer,
    qkv: Buffer,
    normed: Buffer,
    input: Buffer,
    weights: Weights,
    /// Per-head probabilities and score gradients of one sequence, `[heads][S][S]`.
    probabilities: Buffer,
    scores: Buffer,
}

impl Gradients {
    fn new(gpu: &mut Gpu, d: &Dims, dtype: Dtype, seed: u64) -> Result<Gradients, KernelError> {
        let es = numeric::element_bytes(dtype);
        // The incoming gradient of the layer output: random, like every other input.
        let output = gpu.random_buffer(
            d.tokens * d.hidden,
            dtype,
            Storage::Shared,
            seed ^ 0x64,
            1.0,
        )?;
        let activation = |columns: usize| gpu.buffer(d.tokens * columns * es, Storage::Shared);
        let scores_bytes = d.heads * d.seq_len * d.seq_len * es;
        Ok(Gradients {
            output,
            activated: activation(d.intermediate)?,
            gate_up: activation(2 * d.intermediate)?,
            residual_normed: activation(d.hidden)?,
            residual: activation(d.hidden)?,
            attention: activation(d.q_width())?,
            qkv: activation(d.qkv_width())?,
            normed: activation(d.hidden)?,
            input: activation(d.hidden)?,
            weights: Weights {
                qkv: gpu.buffer(d.qkv_width() * d.hidden * es, Storage::Shared)?,
                o: gpu.buffer(d.hidden * d.q_width() * es, Storage::Shared)?,
                gate_up: gpu.buffer(2 * d.intermediate * d.hidden * es, Storage::Shared)?,
                down: gpu.buffer(d.hidden * d.intermediate * es, Storage::Shared)?,
            },
            probabilities: gpu.buffer(scores_bytes, Storage::Private)?,
            scores: gpu.buffer(scores_bytes, Storage::Private)?,
        })
    }
}

pub(super) fn prepare<'a>(
    gpu: &'a mut Gpu,
    batch: u64,
    seq_len: u64,
    shape: &LayerShape,
    dtype: Dtype,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    let d = Dims::new(batch, seq_len, shape);
    let es = numeric::element_bytes(dtype);
    let scores = 2 * d.heads * d.seq_len * d.seq_len;
    gpu.ensure_fits(
        ((2 * d.weight_elements() + 2 * d.activation_elements() + scores) * es) as u64,
        "this layer's forward activations and gradients",
    )?;
    let weights = Weights::random(gpu, &d, dtype, seed)?;
    let scratch = Scratch::new(gpu, &d, dtype)?;
    let input = gpu.random_buffer(
        d.tokens * d.hidden,
        dtype,
        Storage::Shared,
        seed ^ 0x78,
        1.0,
    )?;
    let output = gpu.buffer(d.tokens * d.hidden * es, Storage::Shared)?;
    let forward = layer_steps(gpu, &d, dtype, &weights, &scratch, &input, &output, true)?;
    gpu.run_once(&forward)?;
    let gradients = Gradients::new(gpu, &d, dtype, seed)?;
    let program = backward_steps(gpu, &d, dtype, &weights, &scratch, &input, &gradients)?;
    let gpu: &Gpu = gpu;
    let workload = LayerBackward {
        programs: vec![program],
        dims: d,
        dtype,
        seed,
        weights,
        scratch,
        input,
        gradients,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

fn slices(rows: &[Vec<f64>]) -> Vec<&[f64]> {
    rows.iter().map(Vec::as_slice).collect()
}

/// A `rows × columns` matrix starting `offset` elements into `buffer`, rows `row_elements`
/// apart (one head's slice of a wider activation).
fn strided(
    buffer: &Buffer,
    offset: usize,
    rows: usize,
    columns: usize,
    row_elements: usize,
    dtype: Dtype,
) -> MatrixView {
    let es = numeric::element_bytes(dtype);
    MatrixView {
        buffer: buffer.clone(),
        offset_bytes: offset * es,
        rows,
        columns,
        row_bytes: row_elements * es,
        matrices: 1,
        matrix_bytes: rows * row_elements * es,
        dtype,
    }
}

fn backward_steps(
    gpu: &mut Gpu,
    d: &Dims,
    dtype: Dtype,
    w: &Weights,
    s: &Scratch,
    input: &Buffer,
    g: &Gradients,
) -> Result<Vec<Step>, KernelError> {
    let t = d.tokens;
    let (hidden, inter, qw, qkv) = (d.hidden, d.intermediate, d.q_width(), d.qkv_width());
    let dense = |b: &Buffer, rows, columns| MatrixView::dense(b, rows, columns, dtype);
    let plain = GemmOptions::PLAIN;
    let weight_grad = GemmOptions::LEFT_TRANSPOSED;
    let mut steps = vec![
        // Feed-forward block: y = h + swiglu(rms_norm(h)·W_guᵀ)·W_downᵀ.
        gpu.matmul(
            &dense(&g.output, t, hidden),
            &dense(&w.down, hidden, inter),
            &dense(&g.activated, t, inter),
            plain,
        )?,
        gpu.matmul(
            &dense(&g.output, t, hidden),
            &dense(&s.activated, t, inter),
            &dense(&g.weights.down, hidden, inter),
            weight_grad,
        )?,
        elementwise(
            gpu,
            "swiglu_backward",
            dtype,
            vec![
                (s.gate_up.clone(), 0),
                (g.activated.clone(), 0),
                (g.gate_up.clone(), 0),
            ],
            t,
            inter,
            2 * inter,
        )?,
        gpu.matmul(
            &dense(&g.gate_up, t, 2 * inter),
            &dense(&w.gate_up, 2 * inter, hidden),
            &dense(&g.residual_normed, t, hidden),
            plain,
        )?,
        gpu.matmul(
            &dense(&g.gate_up, t, 2 * inter),
            &dense(&s.residual_normed, t, hidden),
            &dense(&g.weights.gate_up, 2 * inter, hidden),
            weight_grad,
        )?,
        row_dispatch(
            gpu,
            "rms_norm_backward",
            dtype,
            vec![
                (s.residual.clone(), 0),
                (g.residual_normed.clone(), 0),
                (g.output.clone(), 0),
                (g.residual.clone(), 0),
            ],
            t,
            hidden,
            RMS_EPSILON,
        )?,
        // Attention block: h = x + attention(rms_norm(x)·W_qkvᵀ)·W_oᵀ.
        gpu.matmul(
            &dense(&g.residual, t, hidden),
            &dense(&w.o, hidden, qw),
            &dense(&g.attention, t, qw),
            plain,
        )?,
        gpu.matmul(
            &dense(&g.residual, t, hidden),
            &dense(&s.attention, t, qw),
            &dense(&g.weights.o, hidden, qw),
            weight_grad,
        )?,
    ];
    for sequence in 0..d.batch {
        for head in 0..d.heads {
            steps.extend(attention_head_backward(
                gpu, d, dtype, s, g, sequence, head,
            )?);
        }
    }
    steps.extend([
        gpu.matmul(
            &dense(&g.qkv, t, qkv),
            &dense(&w.qkv, qkv, hidden),
            &dense(&g.normed, t, hidden),
            plain,
        )?,
        gpu.matmul(
            &dense(&g.qkv, t, qkv),
            &dense(&s.normed, t, hidden),
            &dense(&g.weights.qkv, qkv, hidden),
            weight_grad,
        )?,
        row_dispatch(
            gpu,
            "rms_norm_backward",
            dtype,
            vec![
                (input.clone(), 0),
                (g.normed.clone(), 0),
                (g.residual.clone(), 0),
                (g.input.clone(), 0),
            ],
            t,
            hidden,
            RMS_EPSILON,
        )?,
    ]);
    Ok(steps)
}

/// Element offsets of one head's Q, K, V (in the QKV activation) and O (in the attention
/// output) for one sequence.
struct HeadOffsets {
    q: usize,
    k: usize,
    v: usize,
    o: usize,
}

fn head_offsets(d: &Dims, sequence: usize, head: usize) -> HeadOffsets {
    let group = head / (d.heads / d.kv_heads);
    let qkv_base = sequence * d.seq_len * d.qkv_width();
    HeadOffsets {
        q: qkv_base + head * d.head_dim,
        k: qkv_base + d.q_width() + group * d.head_dim,
        v: qkv_base + (d.heads + d.kv_heads) * d.head_dim + group * d.head_dim,
        o: sequence * d.seq_len * d.q_width() + head * d.head_dim,
    }
}

fn attention_head_backward(
    gpu: &mut Gpu,
    d: &Dims,
    dtype: Dtype,
    s: &Scratch,
    g: &Gradients,
    sequence: usize,
    head: usize,
) -> Result<Vec<Step>, KernelError> {
    let (n, hd, es) = (d.seq_len, d.head_dim, numeric::element_bytes(dtype));
    let at = head_offsets(d, sequence, head);
    // The first query head of a K/V group overwrites dK and dV, the others add to them.
    let accumulate = !head.is_multiple_of(d.heads / d.kv_heads);
    let scale = 1.0 / (hd as f64).sqrt();
    let qkv_slice = |b: &Buffer, offset| strided(b, offset, n, hd, d.qkv_width(), dtype);
    let o_slice = |b: &Buffer| strided(b, at.o, n, hd, d.q_width(), dtype);
    let score_offset = head * n * n;
    let probabilities = strided(&g.probabilities, score_offset, n, n, n, dtype);
    let scores = strided(&g.scores, score_offset, n, n, n, dtype);
    let q = qkv_slice(&s.qkv, at.q);
    let k = qkv_slice(&s.qkv, at.k);
    let v = qkv_slice(&s.qkv, at.v);
    let grad_o = o_slice(&g.attention);
    let softmax_backward = Dispatch::new(
        gpu.pipeline(typed("attention_softmax_backward", dtype)?)?,
        vec![
            (g.probabilities.clone(), score_offset * es),
            (g.scores.clone(), score_offset * es),
            (g.attention.clone(), at.o * es),
            (s.attention.clone(), at.o * es),
        ],
        &SoftmaxBackwardParams {
            columns: n as u32,
            head_dim: hd as u32,
            o_row_stride: d.q_width() as u32,
            scale: scale as f32,
        },
        Grid::Groups {
            count: [n, 1, 1],
            group: [256, 1, 1],
        },
    )?;
    Ok(vec![
        gpu.matmul(
            &q,
            &k,
            &probabilities,
            GemmOptions::RIGHT_TRANSPOSED.alpha(scale),
        )?,
        row_dispatch(
            gpu,
            "softmax_rows",
            dtype,
            vec![(g.probabilities.clone(), score_offset * es)],
            n,
            n,
            0.0,
        )?,
        gpu.matmul(
            &probabilities,
            &grad_o,
            &qkv_slice(&g.qkv, at.v),
            GemmOptions::LEFT_TRANSPOSED.accumulate(accumulate),
        )?,
        gpu.matmul(&grad_o, &v, &scores, GemmOptions::RIGHT_TRANSPOSED)?,
        Step::Compute(softmax_backward),
        gpu.matmul(&scores, &k, &qkv_slice(&g.qkv, at.q), GemmOptions::PLAIN)?,
        gpu.matmul(
            &scores,
            &q,
            &qkv_slice(&g.qkv, at.k),
            GemmOptions::LEFT_TRANSPOSED.accumulate(accumulate),
        )?,
    ])
}

struct LayerBackward {
    programs: Vec<Vec<Step>>,
    dims: Dims,
    dtype: Dtype,
    seed: u64,
    weights: Weights,
    scratch: Scratch,
    input: Buffer,
    gradients: Gradients,
}

impl LayerBackward {
    /// `actual[t][j] = Σ_o grad_row[o] · weight[o][j]` for sampled `j` (an input gradient
    /// through a `[out][in]` weight).
    fn check_input_gradient(
        &self,
        reader: &Reader,
        checks: &mut Checks,
        grad_row: &[f64],
        weight: (&Buffer, usize),
        actual: &Buffer,
        token: usize,
    ) -> Result<(), KernelError> {
        let (weight, inputs) = weight;
        let outputs = grad_row.len();
        let actual_row = reader.row(actual, inputs, token)?;
        for j in numeric::sample_indices(inputs, 8, self.seed ^ token as u64 ^ 0x1) {
            let column =
                reader
                    .gpu
                    .gather(weight, self.dtype, (0..outputs).map(|o| o * inputs + j))?;
            let (expected, magnitude) = numeric::dot_with_magnitude(grad_row, &column);
            checks.dot(actual_row[j], expected, magnitude);
        }
        Ok(())
    }

    /// `dW[i][j] = Σ_t grad_output[t][i] · input[t][j]` for sampled `(i, j)`.
    fn check_weight_gradient(
        &self,
        reader: &Reader,
        checks: &mut Checks,
        grad_output: (&Buffer, usize),
        input: (&Buffer, usize),
        grad_weight: &Buffer,
    ) -> Result<(), KernelError> {
        let tokens = self.dims.tokens;
        let ((grad_buffer, outputs), (input_buffer, inputs)) = (grad_output, input);
        let rows = numeric::sample_indices(outputs, 4, self.seed ^ 0x2);
        let columns = numeric::sample_indices(inputs, 4, self.seed ^ 0x3);
        for &i in &rows {
            let grad_column = reader.gpu.gather(
                grad_buffer,
                self.dtype,
                (0..tokens).map(|t| t * outputs + i),
            )?;
            let actual = reader.row(grad_weight, inputs, i)?;
            for &j in &columns {
                let input_column = reader.gpu.gather(
                    input_buffer,
                    self.dtype,
                    (0..tokens).map(|t| t * inputs + j),
                )?;
                let (expected, magnitude) =
                    numeric::dot_with_magnitude(&grad_column, &input_column);
                checks.dot(actual[j], expected, magnitude);
            }
        }
        Ok(())
    }

    /// `rms_norm` backward plus the residual gradient, for one token.
    #[allow(clippy::too_many_arguments)]
    fn check_norm_backward(
        &self,
        reader: &Reader,
        checks: &mut Checks,
        forward_input: &Buffer,
        grad_normed: &Buffer,
        residual_grad: &Buffer,
        actual: &Buffer,
        token: usize,
    ) -> Result<(), KernelError> {
        let h = self.dims.hidden;
        let x = reader.row(forward_input, h, token)?;
        let g = reader.row(grad_normed, h, token)?;
        let r = reader.row(residual_grad, h, token)?;
        let actual = reader.row(actual, h, token)?;
        let expected = silirep_core::reference::rms_norm_backward(&x, &g, f64::from(RMS_EPSILON));
        for j in numeric::sample_indices(h, 64, self.seed ^ token as u64 ^ 0x4) {
            checks.element(actual[j], r[j] + expected[j]);
        }
        Ok(())
    }

    /// dQ, dK and dV of the last K/V group of the last sequence, on sampled rows.
    fn check_attention(&self, reader: &Reader, checks: &mut Checks) -> Result<(), KernelError> {
        let d = &self.dims;
        let s = &self.scratch;
        let g = &self.gradients;
        // The last sequence and K/V group: non-zero batch and head offsets are where an
        // indexing mistake would show.
        let sequence = d.batch - 1;
        let group = d.kv_heads - 1;
        let first_token = sequence * d.seq_len;
        let (n, hd) = (d.seq_len, d.head_dim);
        let qkv = reader.gpu.read(
            &s.qkv,
            self.dtype,
            first_token * d.qkv_width(),
            n * d.qkv_width(),
        )?;
        let grad_o = reader.gpu.read(
            &g.attention,
            self.dtype,
            first_token * d.q_width(),
            n * d.q_width(),
        )?;
        let grad_qkv = reader.gpu.read(
            &g.qkv,
            self.dtype,
            first_token * d.qkv_width(),
            n * d.qkv_width(),
        )?;
        // Offsets within one token's row.
        let column = |offset: usize, base: usize| offset - base;
        let rows_of = |data: &[f64], width: usize, start: usize| -> Vec<Vec<f64>> {
            data.chunks_exact(width)
                .map(|r| r[start..start + hd].to_vec())
                .collect()
        };
        let query_rows = numeric::sample_indices(n, 2, self.seed ^ 0x6);
        let key_rows = numeric::sample_indices(n, 2, self.seed ^ 0x7);
        let heads_per_kv = d.heads / d.kv_heads;
        let qkv_base = sequence * n * d.qkv_width();
        let o_base = sequence * n * d.q_width();
        let mut dk = vec![Reference::zeros(hd); key_rows.len()];
        let mut dv = vec![Reference::zeros(hd); key_rows.len()];
        for head in group * heads_per_kv..(group + 1) * heads_per_kv {
            let at = head_offsets(d, sequence, head);
            let q = rows_of(&qkv, d.qkv_width(), column(at.q, qkv_base));
            let k = rows_of(&qkv, d.qkv_width(), column(at.k, qkv_base));
            let v = rows_of(&qkv, d.qkv_width(), column(at.v, qkv_base));
            let grad = rows_of(&grad_o, d.q_width(), column(at.o, o_base));
            let gradients = numeric::attention_backward_reference(
                &slices(&q),
                &slices(&k),
                &slices(&v),
                &slices(&grad),
                1.0 / (hd as f64).sqrt(),
                &query_rows,
                &key_rows,
            );
            let dq_actual = rows_of(&grad_qkv, d.qkv_width(), column(at.q, qkv_base));
            for (slot, &row) in query_rows.iter().enumerate() {
                checks.against(&dq_actual[row], &gradients.dq[slot]);
            }
            // The query heads of the group share this K/V head: their gradients add up.
            for (sum, head_grad) in dk.iter_mut().zip(&gradients.dk) {
                sum.add(head_grad);
            }
            for (sum, head_grad) in dv.iter_mut().zip(&gradients.dv) {
                sum.add(head_grad);
            }
        }
        let at = head_offsets(d, sequence, group * heads_per_kv);
        let dk_actual = rows_of(&grad_qkv, d.qkv_width(), column(at.k, qkv_base));
        let dv_actual = rows_of(&grad_qkv, d.qkv_width(), column(at.v, qkv_base));
        for (slot, &row) in key_rows.iter().enumerate() {
            checks.against(&dk_actual[row], &dk[slot]);
            checks.against(&dv_actual[row], &dv[slot]);
        }
        Ok(())
    }
}

impl Workload for LayerBackward {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let d = &self.dims;
        let (s, g, w) = (&self.scratch, &self.gradients, &self.weights);
        let reader = Reader {
            gpu,
            dtype: self.dtype,
        };
        let mut checks = Checks::default();
        for t in numeric::sample_indices(d.tokens, 2, self.seed) {
            let grad_output = reader.row(&g.output, d.hidden, t)?;
            self.check_input_gradient(
                &reader,
                &mut checks,
                &grad_output,
                (&w.down, d.intermediate),
                &g.activated,
                t,
            )?;

            let gate_up = reader.row(&s.gate_up, 2 * d.intermediate, t)?;
            let grad_activated = reader.row(&g.activated, d.intermediate, t)?;
            let grad_gate_up = reader.row(&g.gate_up, 2 * d.intermediate, t)?;
            for j in numeric::sample_indices(d.intermediate, 32, self.seed ^ t as u64) {
                let (gate, up) = silirep_core::reference::swiglu_backward(
                    gate_up[j],
                    gate_up[d.intermediate + j],
                    grad_activated[j],
                );
                checks.element(grad_gate_up[j], gate);
                checks.element(grad_gate_up[d.intermediate + j], up);
            }
            self.check_input_gradient(
                &reader,
                &mut checks,
                &grad_gate_up,
                (&w.gate_up, d.hidden),
                &g.residual_normed,
                t,
            )?;
            self.check_norm_backward(
                &reader,
                &mut checks,
                &s.residual,
                &g.residual_normed,
                &g.output,
                &g.residual,
                t,
            )?;

            let grad_residual = reader.row(&g.residual, d.hidden, t)?;
            self.check_input_gradient(
                &reader,
                &mut checks,
                &grad_residual,
                (&w.o, d.q_width()),
                &g.attention,
                t,
            )?;

            let grad_qkv = reader.row(&g.qkv, d.qkv_width(), t)?;
            self.check_input_gradient(
                &reader,
                &mut checks,
                &grad_qkv,
                (&w.qkv, d.hidden),
                &g.normed,
                t,
            )?;
            self.check_norm_backward(
                &reader,
                &mut checks,
                &self.input,
                &g.normed,
                &g.residual,
                &g.input,
                t,
            )?;
        }
        let weight_gradients = [
            (
                (&g.output, d.hidden),
                (&s.activated, d.intermediate),
                &g.weights.down,
            ),
            (
                (&g.gate_up, 2 * d.intermediate),
                (&s.residual_normed, d.hidden),
                &g.weights.gate_up,
            ),
            (
                (&g.residual, d.hidden),
                (&s.attention, d.q_width()),
                &g.weights.o,
            ),
            (
                (&g.qkv, d.qkv_width()),
                (&s.normed, d.hidden),
                &g.weights.qkv,
            ),
        ];
        for (grad_output, input, grad_weight) in weight_gradients {
            self.check_weight_gradient(&reader, &mut checks, grad_output, input, grad_weight)?;
        }
        self.check_attention(&reader, &mut checks)?;
        Ok(checks.finish(
            self.dtype,
            &format!(
                "every gradient (input, weight, SwiGLU, RMSNorm, attention dQ/dK/dV) on sampled \
                 entries ({} values), each vs an f64 reference from the GPU's own inputs to that \
                 stage",
                checks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "algorithm".to_string(),
                "input- and weight-gradient GEMMs (MPSMatrixMultiplication), SwiGLU and \
                 RMSNorm backward kernels, attention backward per head: probabilities \
                 recomputed with MPS GEMM + softmax_rows, dV/dP/dQ/dK GEMMs, \
                 attention_softmax_backward kernel"
                    .to_string(),
            ),
            (
                "timed".into(),
                "backward only (the forward ran once in prepare to save activations)".into(),
            ),
            (
                "flop_count_note".into(),
                "silirep-core counts backward as 2× forward; attention backward here does \
                 2.5× its forward GEMM work, so the reported rate understates it"
                    .into(),
            ),
        ])
    }
}
