//! A Mistral-shaped decoder layer, forward, built from MPS GEMMs and this crate's kernels:
//!
//! ```text
//! xn = rms_norm(x);  qkv = xn·W_qkvᵀ;  a = attention(q, k, v)   (grouped-query, fused kernel)
//! h  = x + a·W_oᵀ;   hn = rms_norm(h);  gu = hn·W_gate_upᵀ;  s = silu(gate)·up
//! y  = h + s·W_downᵀ
//! ```
//!
//! Rotary embeddings are left out (element-wise, not counted in the FLOP formula). Decode is
//! the same chain over every layer for `batch` single tokens, without attention (the
//! `Decode` spec excludes KV-cache attention): the attention output is the Q projection.
//!
//! Verification replays every stage of one layer on sampled rows and columns in f64, each
//! stage from the GPU's own input to it, so each kernel and GEMM is checked on its own.

use super::attention::{FusedLayout, Strides, fused_dispatch, row_dispatch, typed};
use super::gpu::{Buffer, Gpu, Storage};
use super::mps::{GemmOptions, MatrixView};
use super::prepared::{Timed, Workload};
use super::program::{Dispatch, GpuParams, Grid, Step};
use crate::numeric::{self, Checks};
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, LayerPart, LayerShape, Pass, PreparedKernel};
use std::collections::BTreeMap;

pub(super) const RMS_EPSILON: f32 = silirep_core::LayerShape::RMS_NORM_EPSILON;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct ElementwiseParams {
    rows: u32,
    columns: u32,
    input_stride: u32,
    output_stride: u32,
}
// SAFETY: four 4-byte fields, mirrors ElementwiseParams in elementwise.metal.
unsafe impl GpuParams for ElementwiseParams {}

/// Sizes of one layer run over `tokens = batch · seq_len` tokens.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub batch: usize,
    pub seq_len: usize,
    pub tokens: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
}

impl Dims {
    pub fn new(batch: u64, seq_len: u64, shape: &LayerShape) -> Dims {
        Dims {
            batch: batch as usize,
            seq_len: seq_len as usize,
            tokens: (batch * seq_len) as usize,
            hidden: shape.hidden as usize,
            heads: shape.heads as usize,
            kv_heads: shape.kv_heads as usize,
            head_dim: shape.head_dim as usize,
            intermediate: shape.intermediate as usize,
        }
    }
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }
    pub fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }
    pub fn weight_elements(&self) -> usize {
        self.qkv_width() * self.hidden
            + self.hidden * self.q_width()
            + 2 * self.intermediate * self.hidden
            + self.hidden * self.intermediate
    }
    pub fn activation_elements(&self) -> usize {
        self.tokens * (6 * self.hidden + self.qkv_width() + self.q_width() + 3 * self.intermediate)
    }
}

/// Weights of one layer, stored `[out][in]` as PyTorch does, scaled for unit-RMS outputs.
pub(super) struct Weights {
    pub qkv: Buffer,
    pub o: Buffer,
    pub gate_up: Buffer,
    pub down: Buffer,
}

impl Weights {
    pub fn random(
        gpu: &mut Gpu,
        d: &Dims,
        dtype: Dtype,
        seed: u64,
    ) -> Result<Weights, KernelError> {
        let mut weight = |rows: usize, columns: usize, salt: u64| {
            gpu.random_buffer(
                rows * columns,
                dtype,
                Storage::Shared,
                seed ^ salt,
                numeric::unit_gain_scale(columns as u64),
            )
        };
        Ok(Weights {
            qkv: weight(d.qkv_width(), d.hidden, 0x51)?,
            o: weight(d.hidden, d.q_width(), 0x52)?,
            gate_up: weight(2 * d.intermediate, d.hidden, 0x53)?,
            down: weight(d.hidden, d.intermediate, 0x54)?,
        })
    }
}

/// Intermediate activations, reused by every layer of a decode step.
pub(super) struct Scratch {
    pub normed: Buffer,
    pub qkv: Buffer,
    pub attention: Buffer,
    pub attention_projected: Buffer,
    pub residual: Buffer,
    pub residual_normed: Buffer,
    pub gate_up: Buffer,
    pub activated: Buffer,
    pub ffn: Buffer,
}

impl Scratch {
    pub fn new(gpu: &Gpu, d: &Dims, dtype: Dtype) -> Result<Scratch, KernelError> {
        let es = numeric::element_bytes(dtype);
        let buffer = |columns: usize| gpu.buffer(d.tokens * columns * es, Storage::Shared);
        Ok(Scratch {
            normed: buffer(d.hidden)?,
            qkv: buffer(d.qkv_width())?,
            attention: buffer(d.q_width())?,
            attention_projected: buffer(d.hidden)?,
            residual: buffer(d.hidden)?,
            residual_normed: buffer(d.hidden)?,
            gate_up: buffer(2 * d.intermediate)?,
            activated: buffer(d.intermediate)?,
            ffn: buffer(d.hidden)?,
        })
    }
}

pub(super) fn elementwise(
    gpu: &mut Gpu,
    kernel: &str,
    dtype: Dtype,
    buffers: Vec<(Buffer, usize)>,
    rows: usize,
    columns: usize,
    input_stride: usize,
) -> Result<Step, KernelError> {
    let to_u32 = |v: usize| {
        u32::try_from(v).map_err(|_| KernelError::Unsupported(format!("dimension {v} exceeds u32")))
    };
    let params = ElementwiseParams {
        rows: to_u32(rows)?,
        columns: to_u32(columns)?,
        input_stride: to_u32(input_stride)?,
        output_stride: to_u32(columns)?,
    };
    Ok(Step::Compute(Dispatch::new(
        gpu.pipeline(typed(kernel, dtype)?)?,
        buffers,
        &params,
        Grid::Threads {
            total: [columns, rows, 1],
            group: [256, 1, 1],
        },
    )?))
}

/// `output = input · weightᵀ` for `[out][in]` weights: a GEMM, or for a single token (decode
/// at batch 1) a matrix-vector product, the kernel a GEMV-bound step really runs.
fn project(
    gpu: &Gpu,
    input: &MatrixView,
    weight: &MatrixView,
    output: &MatrixView,
) -> Result<Step, KernelError> {
    if input.rows == 1 {
        gpu.matvec(weight, &input.row_vector(0), &output.row_vector(0))
    } else {
        gpu.matmul(input, weight, output, GemmOptions::RIGHT_TRANSPOSED)
    }
}

/// The steps of one layer from `input` to `output`.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_steps(
    gpu: &mut Gpu,
    d: &Dims,
    dtype: Dtype,
    weights: &Weights,
    scratch: &Scratch,
    input: &Buffer,
    output: &Buffer,
    with_attention: bool,
) -> Result<Vec<Step>, KernelError> {
    let t = d.tokens;
    let dense = |b: &Buffer, rows, columns| MatrixView::dense(b, rows, columns, dtype);
    let es = numeric::element_bytes(dtype);
    let mut steps = vec![
        row_dispatch(
            gpu,
            "rms_norm",
            dtype,
            vec![(input.clone(), 0), (scratch.normed.clone(), 0)],
            t,
            d.hidden,
            RMS_EPSILON,
        )?,
        project(
            gpu,
            &dense(&scratch.normed, t, d.hidden),
            &dense(&weights.qkv, d.qkv_width(), d.hidden),
            &dense(&scratch.qkv, t, d.qkv_width()),
        )?,
    ];
    let attention_output = if with_attention {
        let qkv = Strides {
            row: d.qkv_width(),
            head: d.head_dim,
            batch: d.seq_len * d.qkv_width(),
        };
        let layout = FusedLayout {
            batch: d.batch,
            heads: d.heads,
            seq_len: d.seq_len,
            head_dim: d.head_dim,
            heads_per_kv: d.heads / d.kv_heads,
            q: qkv,
            kv: qkv,
            o: Strides {
                row: d.q_width(),
                head: d.head_dim,
                batch: d.seq_len * d.q_width(),
            },
        };
        steps.push(fused_dispatch(
            gpu,
            dtype,
            &layout,
            [
                (scratch.qkv.clone(), 0),
                (scratch.qkv.clone(), d.q_width() * es),
                (
                    scratch.qkv.clone(),
                    (d.heads + d.kv_heads) * d.head_dim * es,
                ),
                (scratch.attention.clone(), 0),
            ],
        )?);
        dense(&scratch.attention, t, d.q_width())
    } else {
        dense(&scratch.qkv, t, d.qkv_width()).columns(0, d.q_width())
    };
    steps.extend([
        project(
            gpu,
            &attention_output,
            &dense(&weights.o, d.hidden, d.q_width()),
            &dense(&scratch.attention_projected, t, d.hidden),
        )?,
        elementwise(
            gpu,
            "add",
            dtype,
            vec![
                (input.clone(), 0),
                (scratch.attention_projected.clone(), 0),
                (scratch.residual.clone(), 0),
            ],
            t,
            d.hidden,
            d.hidden,
        )?,
        row_dispatch(
            gpu,
            "rms_norm",
            dtype,
            vec![
                (scratch.residual.clone(), 0),
                (scratch.residual_normed.clone(), 0),
            ],
            t,
            d.hidden,
            RMS_EPSILON,
        )?,
        project(
            gpu,
            &dense(&scratch.residual_normed, t, d.hidden),
            &dense(&weights.gate_up, 2 * d.intermediate, d.hidden),
            &dense(&scratch.gate_up, t, 2 * d.intermediate),
        )?,
        elementwise(
            gpu,
            "swiglu",
            dtype,
            vec![(scratch.gate_up.clone(), 0), (scratch.activated.clone(), 0)],
            t,
            d.intermediate,
            2 * d.intermediate,
        )?,
        project(
            gpu,
            &dense(&scratch.activated, t, d.intermediate),
            &dense(&weights.down, d.hidden, d.intermediate),
            &dense(&scratch.ffn, t, d.hidden),
        )?,
        elementwise(
            gpu,
            "add",
            dtype,
            vec![
                (scratch.residual.clone(), 0),
                (scratch.ffn.clone(), 0),
                (output.clone(), 0),
            ],
            t,
            d.hidden,
            d.hidden,
        )?,
    ]);
    Ok(steps)
}

pub(super) fn check_dtype(dtype: Dtype) -> Result<(), KernelError> {
    typed("rms_norm", dtype).map(|_| ())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_layer<'a>(
    gpu: &'a mut Gpu,
    pass: Pass,
    part: LayerPart,
    batch: u64,
    seq_len: u64,
    shape: LayerShape,
    dtype: Dtype,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    if part != LayerPart::Full {
        return Err(KernelError::Unsupported(
            "the Metal backend measures the full layer only (part = full)".into(),
        ));
    }
    check_dtype(dtype)?;
    if shape.kv_heads == 0 || !shape.heads.is_multiple_of(shape.kv_heads) {
        return Err(KernelError::Unsupported(format!(
            "{} heads cannot share {} K/V heads evenly",
            shape.heads, shape.kv_heads
        )));
    }
    if pass == Pass::Backward {
        return super::layer_backward::prepare(gpu, batch, seq_len, &shape, dtype, seed);
    }
    let d = Dims::new(batch, seq_len, &shape);
    let es = numeric::element_bytes(dtype);
    gpu.ensure_fits(
        ((d.weight_elements() + d.activation_elements()) * es) as u64,
        "this layer",
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
    let program = layer_steps(gpu, &d, dtype, &weights, &scratch, &input, &output, true)?;
    let gpu: &Gpu = gpu;
    let workload = Layer {
        programs: vec![program],
        dims: d,
        dtype,
        seed,
        last: LastLayer {
            weights,
            input,
            output,
        },
        scratch,
        with_attention: true,
        layers: 1,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

pub(crate) fn prepare_decode<'a>(
    gpu: &'a mut Gpu,
    batch: u64,
    layers: u64,
    shape: LayerShape,
    dtype: Dtype,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    check_dtype(dtype)?;
    if layers == 0 {
        return Err(KernelError::Unsupported("decode through 0 layers".into()));
    }
    let d = Dims::new(batch, 1, &shape);
    let es = numeric::element_bytes(dtype);
    let layers = layers as usize;
    gpu.ensure_fits(
        ((layers * d.weight_elements() + d.activation_elements()) * es) as u64,
        &format!("{layers} layers of weights"),
    )?;
    let scratch = Scratch::new(gpu, &d, dtype)?;
    // Two activation buffers, ping-ponged: layer l reads one and writes the other.
    let activations = [
        gpu.random_buffer(
            d.tokens * d.hidden,
            dtype,
            Storage::Shared,
            seed ^ 0x78,
            1.0,
        )?,
        gpu.buffer(d.tokens * d.hidden * es, Storage::Shared)?,
    ];
    let mut program = Vec::new();
    let mut last = None;
    for layer in 0..layers {
        let weights = Weights::random(gpu, &d, dtype, seed ^ ((layer as u64 + 1) << 16))?;
        let input = &activations[layer % 2];
        let output = &activations[(layer + 1) % 2];
        program.extend(layer_steps(
            gpu, &d, dtype, &weights, &scratch, input, output, false,
        )?);
        last = Some(LastLayer {
            weights,
            input: input.clone(),
            output: output.clone(),
        });
    }
    let gpu: &Gpu = gpu;
    let workload = Layer {
        programs: vec![program],
        dims: d,
        dtype,
        seed,
        last: last.expect("at least one layer"),
        scratch,
        with_attention: false,
        layers,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

/// The buffers of the last layer in the chain, whose stages the check replays (every layer
/// runs the same code, the last one's inputs are still in memory after a run).
struct LastLayer {
    weights: Weights,
    input: Buffer,
    output: Buffer,
}

struct Layer {
    programs: Vec<Vec<Step>>,
    dims: Dims,
    dtype: Dtype,
    seed: u64,
    last: LastLayer,
    scratch: Scratch,
    with_attention: bool,
    layers: usize,
}

/// Reads rows of a `[tokens][columns]` activation or `[out][in]` weight buffer.
pub(super) struct Reader<'g> {
    pub gpu: &'g Gpu,
    pub dtype: Dtype,
}

impl Reader<'_> {
    pub fn row(
        &self,
        buffer: &Buffer,
        columns: usize,
        row: usize,
    ) -> Result<Vec<f64>, KernelError> {
        self.gpu.read(buffer, self.dtype, row * columns, columns)
    }
}

impl Layer {
    /// Checks `output[t][j] = residual[t][j] + input[t]·weight[j]` (or without residual).
    #[allow(clippy::too_many_arguments)]
    fn check_projection(
        &self,
        reader: &Reader,
        checks: &mut Checks,
        input_row: &[f64],
        weight: &Buffer,
        output: (&Buffer, usize),
        residual: Option<&[f64]>,
        token: usize,
    ) -> Result<(), KernelError> {
        let (buffer, columns) = output;
        let actual = reader.row(buffer, columns, token)?;
        for j in numeric::sample_indices(columns, 16, self.seed ^ token as u64) {
            let weight_row = reader.row(weight, input_row.len(), j)?;
            let (mut expected, mut magnitude) = numeric::dot_with_magnitude(input_row, &weight_row);
            if let Some(residual) = residual {
                expected += residual[j];
                magnitude += residual[j].abs();
            }
            checks.dot(actual[j], expected, magnitude);
        }
        Ok(())
    }
}

impl Workload for Layer {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let d = &self.dims;
        let s = &self.scratch;
        let w = &self.last.weights;
        let reader = Reader {
            gpu,
            dtype: self.dtype,
        };
        let mut checks = Checks::default();
        let epsilon = f64::from(RMS_EPSILON);
        let tokens = numeric::sample_indices(d.tokens, 3, self.seed);
        for &t in &tokens {
            let x = reader.row(&self.last.input, d.hidden, t)?;
            let normed = reader.row(&s.normed, d.hidden, t)?;
            for (a, e) in normed
                .iter()
                .zip(silirep_core::reference::rms_norm(&x, epsilon))
            {
                checks.element(*a, e);
            }
            self.check_projection(
                &reader,
                &mut checks,
                &normed,
                &w.qkv,
                (&s.qkv, d.qkv_width()),
                None,
                t,
            )?;

            let attention_row = if self.with_attention {
                let attention = reader.row(&s.attention, d.q_width(), t)?;
                self.check_attention_row(&reader, &mut checks, t, &attention)?;
                attention
            } else {
                reader.row(&s.qkv, d.qkv_width(), t)?[..d.q_width()].to_vec()
            };
            self.check_projection(
                &reader,
                &mut checks,
                &attention_row,
                &w.o,
                (&s.residual, d.hidden),
                Some(&x),
                t,
            )?;

            let residual = reader.row(&s.residual, d.hidden, t)?;
            let residual_normed = reader.row(&s.residual_normed, d.hidden, t)?;
            for (a, e) in residual_normed
                .iter()
                .zip(silirep_core::reference::rms_norm(&residual, epsilon))
            {
                checks.element(*a, e);
            }
            self.check_projection(
                &reader,
                &mut checks,
                &residual_normed,
                &w.gate_up,
                (&s.gate_up, 2 * d.intermediate),
                None,
                t,
            )?;

            let gate_up = reader.row(&s.gate_up, 2 * d.intermediate, t)?;
            let activated = reader.row(&s.activated, d.intermediate, t)?;
            for j in numeric::sample_indices(d.intermediate, 64, self.seed ^ 0x5) {
                let expected =
                    silirep_core::reference::swiglu(gate_up[j], gate_up[d.intermediate + j]);
                checks.element(activated[j], expected);
            }
            self.check_projection(
                &reader,
                &mut checks,
                &activated,
                &w.down,
                (&self.last.output, d.hidden),
                Some(&residual),
                t,
            )?;
        }
        Ok(checks.finish(
            self.dtype,
            &format!(
                "every stage of {}layer on {} sampled tokens ({} values), each vs an f64 \
                 reference from the GPU's own input to that stage",
                if self.layers > 1 { "the last " } else { "the " },
                tokens.len(),
                checks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut details = BTreeMap::from([
            (
                "algorithm".to_string(),
                "rms_norm → QKV GEMM → attention → O GEMM + residual → rms_norm → gate/up \
                 GEMM → SwiGLU → down GEMM + residual; GEMMs are MPSMatrixMultiplication \
                 with transposed [out][in] weights, or MPSMatrixVectorMultiplication for a \
                 single token"
                    .to_string(),
            ),
            (
                "rotary_embedding".into(),
                "omitted (element-wise, not counted)".into(),
            ),
            ("norm_gain".into(), "omitted (a gain of ones)".into()),
        ]);
        if self.with_attention {
            details.insert(
                "attention".into(),
                "attention_fused kernel, grouped-query, non-causal".into(),
            );
        } else {
            details.insert(
                "attention".into(),
                "none (decode excludes KV-cache attention; Q projection feeds O)".into(),
            );
        }
        details
    }
}

impl Layer {
    fn check_attention_row(
        &self,
        reader: &Reader,
        checks: &mut Checks,
        token: usize,
        attention: &[f64],
    ) -> Result<(), KernelError> {
        let d = &self.dims;
        let sequence = token / d.seq_len;
        let first_token = sequence * d.seq_len;
        let width = d.qkv_width();
        let qkv = reader.gpu.read(
            &self.scratch.qkv,
            self.dtype,
            first_token * width,
            d.seq_len * width,
        )?;
        let rows: Vec<&[f64]> = qkv.chunks_exact(width).collect();
        let query_row = rows[token - first_token];
        for head in numeric::sample_indices(d.heads, 2, self.seed ^ token as u64) {
            let kv_head = head / (d.heads / d.kv_heads);
            let k_start = d.q_width() + kv_head * d.head_dim;
            let v_start = (d.heads + d.kv_heads) * d.head_dim + kv_head * d.head_dim;
            let keys: Vec<&[f64]> = rows
                .iter()
                .map(|r| &r[k_start..k_start + d.head_dim])
                .collect();
            let values: Vec<&[f64]> = rows
                .iter()
                .map(|r| &r[v_start..v_start + d.head_dim])
                .collect();
            let query = &query_row[head * d.head_dim..(head + 1) * d.head_dim];
            let expected = numeric::attention_reference(
                query,
                &keys,
                &values,
                1.0 / (d.head_dim as f64).sqrt(),
            );
            checks.against(
                &attention[head * d.head_dim..(head + 1) * d.head_dim],
                &expected,
            );
        }
        Ok(())
    }
}
