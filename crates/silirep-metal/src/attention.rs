//! Scaled dot-product attention, non-causal (backend.rs refuses causal configurations), two
//! ways: naive (MPS GEMM for Q·Kᵀ, a softmax kernel over the materialised scores, MPS GEMM for
//! P·V) and fused (one `.metal` kernel that never writes the scores). The fused kernel is also
//! the layer's attention.

use super::gpu::{Buffer, Gpu, Storage};
use super::mps::{GemmOptions, MatrixView};
use super::prepared::{Timed, Workload};
use super::program::{Dispatch, GpuParams, Grid, Step};
use crate::numeric::{self, Checks};
use silirep_core::schema::Verification;
use silirep_core::{AttentionImpl, Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// Query rows per threadgroup in attention_fused.metal (one SIMD group each).
const FUSED_ROWS_PER_GROUP: usize = 8;
const FUSED_MAX_HEAD_DIM: u64 = 128;
const SOFTMAX_THREADS: usize = 256;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub batch: u64,
    pub heads: u64,
    pub seq_len: u64,
    pub head_dim: u64,
}

/// Element strides of one operand of the fused kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strides {
    pub row: usize,
    pub head: usize,
    pub batch: usize,
}

/// Where the fused kernel finds Q, K, V and O, so it can read a layer's fused QKV output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FusedLayout {
    pub batch: usize,
    pub heads: usize,
    pub seq_len: usize,
    pub head_dim: usize,
    pub heads_per_kv: usize,
    pub q: Strides,
    pub kv: Strides,
    pub o: Strides,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct AttentionParams {
    seq_len: u32,
    head_dim: u32,
    heads_per_kv: u32,
    q_row_stride: u32,
    kv_row_stride: u32,
    o_row_stride: u32,
    q_head_stride: u32,
    kv_head_stride: u32,
    o_head_stride: u32,
    q_batch_stride: u32,
    kv_batch_stride: u32,
    o_batch_stride: u32,
    scale: f32,
    unused: [u32; 3],
}
// SAFETY: sixteen 4-byte fields, mirrors AttentionParams in attention_fused.metal.
unsafe impl GpuParams for AttentionParams {}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowParams {
    pub columns: u32,
    pub row_stride: u32,
    pub epsilon: f32,
    pub unused: u32,
}
// SAFETY: four 4-byte fields, mirrors RowParams in reductions.metal.
unsafe impl GpuParams for RowParams {}

fn to_u32(value: usize, what: &str) -> Result<u32, KernelError> {
    u32::try_from(value)
        .map_err(|_| KernelError::Unsupported(format!("{what} {value} exceeds u32")))
}

/// Kernel name with the storage-type suffix, for the kernels that come in f32 and f16.
pub(crate) fn typed(base: &str, dtype: Dtype) -> Result<&'static str, KernelError> {
    let name = match (base, dtype) {
        ("attention_fused", Dtype::F32) => "attention_fused_f32",
        ("attention_fused", Dtype::F16) => "attention_fused_f16",
        ("softmax_rows", Dtype::F32) => "softmax_rows_f32",
        ("softmax_rows", Dtype::F16) => "softmax_rows_f16",
        ("rms_norm", Dtype::F32) => "rms_norm_f32",
        ("rms_norm", Dtype::F16) => "rms_norm_f16",
        ("add", Dtype::F32) => "add_f32",
        ("add", Dtype::F16) => "add_f16",
        ("swiglu", Dtype::F32) => "swiglu_f32",
        ("swiglu", Dtype::F16) => "swiglu_f16",
        ("swiglu_backward", Dtype::F32) => "swiglu_backward_f32",
        ("swiglu_backward", Dtype::F16) => "swiglu_backward_f16",
        ("rms_norm_backward", Dtype::F32) => "rms_norm_backward_f32",
        ("rms_norm_backward", Dtype::F16) => "rms_norm_backward_f16",
        ("attention_softmax_backward", Dtype::F32) => "attention_softmax_backward_f32",
        ("attention_softmax_backward", Dtype::F16) => "attention_softmax_backward_f16",
        _ => {
            return Err(KernelError::Unsupported(format!(
                "{base} runs in f32 and f16 on Metal, not {dtype}"
            )));
        }
    };
    Ok(name)
}

/// The fused attention dispatch. Operands are (buffer, byte offset).
pub(crate) fn fused_dispatch(
    gpu: &mut Gpu,
    dtype: Dtype,
    layout: &FusedLayout,
    operands: [(Buffer, usize); 4],
) -> Result<Step, KernelError> {
    if !layout.head_dim.is_multiple_of(32) || layout.head_dim as u64 > FUSED_MAX_HEAD_DIM {
        return Err(KernelError::Unsupported(format!(
            "the fused attention kernel needs head_dim a multiple of 32 up to \
             {FUSED_MAX_HEAD_DIM}, not {}",
            layout.head_dim
        )));
    }
    let params = AttentionParams {
        seq_len: to_u32(layout.seq_len, "seq_len")?,
        head_dim: to_u32(layout.head_dim, "head_dim")?,
        heads_per_kv: to_u32(layout.heads_per_kv, "heads_per_kv")?,
        q_row_stride: to_u32(layout.q.row, "stride")?,
        kv_row_stride: to_u32(layout.kv.row, "stride")?,
        o_row_stride: to_u32(layout.o.row, "stride")?,
        q_head_stride: to_u32(layout.q.head, "stride")?,
        kv_head_stride: to_u32(layout.kv.head, "stride")?,
        o_head_stride: to_u32(layout.o.head, "stride")?,
        q_batch_stride: to_u32(layout.q.batch, "stride")?,
        kv_batch_stride: to_u32(layout.kv.batch, "stride")?,
        o_batch_stride: to_u32(layout.o.batch, "stride")?,
        scale: (1.0 / (layout.head_dim as f64).sqrt()) as f32,
        unused: [0; 3],
    };
    Ok(Step::Compute(Dispatch::new(
        gpu.pipeline(typed("attention_fused", dtype)?)?,
        operands.to_vec(),
        &params,
        Grid::Groups {
            count: [
                layout.seq_len.div_ceil(FUSED_ROWS_PER_GROUP),
                layout.heads,
                layout.batch,
            ],
            group: [FUSED_ROWS_PER_GROUP * 32, 1, 1],
        },
    )?))
}

/// A row-wise kernel (softmax, RMS norm): one threadgroup per row.
pub(crate) fn row_dispatch(
    gpu: &mut Gpu,
    kernel: &str,
    dtype: Dtype,
    buffers: Vec<(Buffer, usize)>,
    rows: usize,
    columns: usize,
    epsilon: f32,
) -> Result<Step, KernelError> {
    let params = RowParams {
        columns: to_u32(columns, "columns")?,
        row_stride: to_u32(columns, "columns")?,
        epsilon,
        unused: 0,
    };
    Ok(Step::Compute(Dispatch::new(
        gpu.pipeline(typed(kernel, dtype)?)?,
        buffers,
        &params,
        Grid::Groups {
            count: [rows, 1, 1],
            group: [SOFTMAX_THREADS, 1, 1],
        },
    )?))
}

pub(crate) fn prepare<'a>(
    gpu: &'a mut Gpu,
    implementation: AttentionImpl,
    shape: Shape,
    dtype: Dtype,
    seed: u64,
) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
    typed("attention_fused", dtype)?;
    let fused = match implementation {
        AttentionImpl::Naive => false,
        AttentionImpl::Fused => true,
        AttentionImpl::Unspecified => {
            return Err(KernelError::Unsupported(
                "attention implementation `unspecified` labels imported results; measure \
                 naive or fused"
                    .into(),
            ));
        }
    };
    let (b, h, s, d) = (
        shape.batch as usize,
        shape.heads as usize,
        shape.seq_len as usize,
        shape.head_dim as usize,
    );
    let es = numeric::element_bytes(dtype);
    let tensor = b * h * s * d;
    let scores = b * h * s * s;
    let needed = if fused {
        4 * tensor * es
    } else {
        (4 * tensor + scores) * es
    };
    gpu.ensure_fits(needed as u64, "this attention")?;
    let q = gpu.random_buffer(tensor, dtype, Storage::Shared, seed, 1.0)?;
    let k = gpu.random_buffer(tensor, dtype, Storage::Shared, seed ^ 0x6b, 1.0)?;
    let v = gpu.random_buffer(tensor, dtype, Storage::Shared, seed ^ 0x76, 1.0)?;
    let o = gpu.buffer(tensor * es, Storage::Shared)?;
    let scale = 1.0 / (d as f64).sqrt();
    let mut details = BTreeMap::from([(
        "layout".to_string(),
        "[batch·heads, seq, head_dim]".to_string(),
    )]);
    let program = if !fused {
        // The scores never leave the GPU: private storage.
        let p = gpu.buffer(scores * es, Storage::Private)?;
        let bh = b * h;
        let q_view = MatrixView::batched(&q, bh, s, d, dtype);
        let k_view = MatrixView::batched(&k, bh, s, d, dtype);
        let v_view = MatrixView::batched(&v, bh, s, d, dtype);
        let p_view = MatrixView::batched(&p, bh, s, s, dtype);
        let o_view = MatrixView::batched(&o, bh, s, d, dtype);
        details.insert(
            "algorithm".into(),
            "MPSMatrixMultiplication Q·Kᵀ (scale as alpha), softmax_rows kernel, \
                 MPSMatrixMultiplication P·V"
                .into(),
        );
        vec![
            gpu.matmul(
                &q_view,
                &k_view,
                &p_view,
                GemmOptions::RIGHT_TRANSPOSED.alpha(scale),
            )?,
            row_dispatch(
                gpu,
                "softmax_rows",
                dtype,
                vec![(p.clone(), 0)],
                bh * s,
                s,
                0.0,
            )?,
            gpu.matmul(&p_view, &v_view, &o_view, GemmOptions::PLAIN)?,
        ]
    } else {
        let strides = Strides {
            row: d,
            head: s * d,
            batch: h * s * d,
        };
        let layout = FusedLayout {
            batch: b,
            heads: h,
            seq_len: s,
            head_dim: d,
            heads_per_kv: 1,
            q: strides,
            kv: strides,
            o: strides,
        };
        details.insert(
            "algorithm".into(),
            format!(
                "attention_fused kernel: one SIMD group per query row, \
                     {FUSED_ROWS_PER_GROUP} rows per threadgroup sharing K/V tiles in \
                     threadgroup memory, online softmax"
            ),
        );
        vec![fused_dispatch(
            gpu,
            dtype,
            &layout,
            [
                (q.clone(), 0),
                (k.clone(), 0),
                (v.clone(), 0),
                (o.clone(), 0),
            ],
        )?]
    };
    let gpu: &Gpu = gpu;
    let workload = Attention {
        programs: vec![program],
        q,
        k,
        v,
        o,
        shape: (b * h, s, d),
        dtype,
        seed,
        details,
    };
    Ok(Box::new(Timed::new(gpu, workload)?))
}

struct Attention {
    programs: Vec<Vec<Step>>,
    q: Buffer,
    k: Buffer,
    v: Buffer,
    o: Buffer,
    /// (batch·heads, seq_len, head_dim)
    shape: (usize, usize, usize),
    dtype: Dtype,
    seed: u64,
    details: BTreeMap<String, String>,
}

impl Workload for Attention {
    fn programs(&self) -> &[Vec<Step>] {
        &self.programs
    }

    fn check(&self, gpu: &Gpu) -> Result<Verification, KernelError> {
        let (bh, s, d) = self.shape;
        let mut checks = Checks::default();
        let heads = numeric::sample_indices(bh, 4, self.seed);
        for &head in &heads {
            let base = head * s * d;
            let keys = gpu.read(&self.k, self.dtype, base, s * d)?;
            let values = gpu.read(&self.v, self.dtype, base, s * d)?;
            let key_rows: Vec<&[f64]> = keys.chunks_exact(d).collect();
            let value_rows: Vec<&[f64]> = values.chunks_exact(d).collect();
            for row in numeric::sample_indices(s, 4, self.seed ^ head as u64) {
                let query = gpu.read(&self.q, self.dtype, base + row * d, d)?;
                let actual = gpu.read(&self.o, self.dtype, base + row * d, d)?;
                let expected = numeric::attention_reference(
                    &query,
                    &key_rows,
                    &value_rows,
                    1.0 / (d as f64).sqrt(),
                );
                checks.against(&actual, &expected);
            }
        }
        Ok(checks.finish(
            self.dtype,
            &format!(
                "{} output rows ({} values) vs f64 softmax attention, error relative to \
                 Σ pⱼ·|vⱼ|",
                heads.len() * 4,
                checks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        self.details.clone()
    }
}
