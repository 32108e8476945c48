//! Scaled dot-product attention, f16/bf16, layout `[batch·heads, seq, head_dim]`, optionally
//! causal (query i attends to keys 0..=i).
//!
//! Naive: `S = Q·Kᵀ/√d` (one strided-batched cuBLASLt GEMM, S materialised in the input
//! dtype), a row softmax kernel in place (which applies the causal mask), `O = P·V` (a second
//! batched GEMM) — the sequence a framework runs without a fused kernel. Fused: the
//! flash-attention kernels in attention.cu, which never write S — on Hopper (compute
//! capability 9.0) the warp-specialised wgmma kernel fed by tensor copies (TMA), elsewhere the
//! mma.sync one. `SILIREP_CUDA_FLASH=mma` makes a Hopper GPU run the mma.sync kernel too, so
//! the portable kernel can be verified and timed on the machine at hand.
//!
//! The fused output is verified against the naive path on the same inputs (every entry), and
//! both against an f64 host reference on sampled rows.

use crate::device::{Buffer, Gpu, driver_error};
use crate::gemm::{Blas, GemmShape, GemmTypes, MatmulPlan};
use crate::host::{ElemType, Rng, dot};
use cudarc::driver::sys::{
    CUtensorMap, CUtensorMapDataType, CUtensorMapFloatOOBfill, CUtensorMapInterleave,
    CUtensorMapL2promotion, CUtensorMapSwizzle, cuTensorMapEncodeTiled,
};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{AttentionImpl, Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// Query rows per fused block and key rows per tile (attention.cu).
pub const FLASH_BLOCK_M: u64 = 128;
pub const FLASH_HEAD_DIM: u64 = 128;
/// Threads per fused block: 4 warps of 32 query rows (`FA_THREADS` in attention.cu).
pub const FLASH_THREADS: u32 = 128;
/// Threads per Hopper block: a producer and two consumer warpgroups (`FA3_THREADS`).
pub const FLASH_WGMMA_THREADS: u32 = 384;
const SOFTMAX_MAX_COLS: u64 = 8192;

/// Why a shape cannot run, before anything is allocated.
pub fn check_shape(
    implementation: AttentionImpl,
    seq: u64,
    head_dim: u64,
) -> Result<(), KernelError> {
    match implementation {
        AttentionImpl::Unspecified => {
            return Err(KernelError::Unsupported(
                "attention needs `naive` or `fused`".into(),
            ));
        }
        AttentionImpl::Fused
            if head_dim != FLASH_HEAD_DIM || !seq.is_multiple_of(FLASH_BLOCK_M) =>
        {
            return Err(KernelError::Unsupported(format!(
                "the fused kernel is built for head_dim {FLASH_HEAD_DIM} and seq_len a multiple of {FLASH_BLOCK_M} (got {head_dim}, {seq})"
            )));
        }
        AttentionImpl::Naive if seq > SOFTMAX_MAX_COLS || !seq.is_multiple_of(8) => {
            return Err(KernelError::Unsupported(format!(
                "the softmax kernel handles rows of up to {SOFTMAX_MAX_COLS} columns, a multiple of 8 (got {seq})"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// Q, K, V, O strides in elements, for the fused kernel.
#[derive(Debug, Clone, Copy)]
pub struct FlashLayout {
    pub seq: u32,
    pub heads: u32,
    pub kv_group: u32,
    pub batches: u32,
    pub q_strides: (u64, u64, u64),
    pub kv_strides: (u64, u64, u64),
    /// Query i attends to keys 0..=i only.
    pub causal: bool,
}

/// A tensor-copy descriptor (`TensorMap` in attention.cu), a kernel argument by value.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct TensorMap(CUtensorMap);
// SAFETY: 128 plain bytes with the kernel parameter's size and (at least its) alignment.
unsafe impl DeviceRepr for TensorMap {}

/// Rows of Q, K or V for the Hopper kernel's tensor copies: FLASH_HEAD_DIM 16-bit columns ×
/// `rows` × `heads` × `batches` at `base`, strides (batch, head, row) in elements; boxes of 64
/// columns (128 bytes, the swizzle's span) × FLASH_BLOCK_M rows, swizzled as wgmma reads them.
fn tensor_map(
    elem: ElemType,
    base: u64,
    (rows, heads, batches): (u32, u32, u32),
    (batch_stride, head_stride, row_stride): (u64, u64, u64),
) -> Result<TensorMap, KernelError> {
    let bytes = elem.size_bytes() as u64;
    // A dimension of extent 1 is never stepped along; its stride (0 for a single batch) only
    // has to be one the encoder accepts.
    let stride = |elements: u64, extent: u32| if extent == 1 { 16 } else { elements * bytes };
    let strides = [
        row_stride * bytes,
        stride(head_stride, heads),
        stride(batch_stride, batches),
    ];
    if !base.is_multiple_of(16)
        || strides
            .iter()
            .any(|s| !s.is_multiple_of(16) || *s >= 1 << 40)
    {
        return Err(KernelError::Unsupported(format!(
            "the Hopper attention kernel's tensor copies need 16-byte-aligned rows (base {base:#x}, strides {strides:?} bytes)"
        )));
    }
    let dims = [FLASH_HEAD_DIM, rows as u64, heads as u64, batches as u64];
    let boxes = [64, FLASH_BLOCK_M as u32, 1, 1];
    let element_strides = [1u32; 4];
    let data_type = if elem == ElemType::Bf16 {
        CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
    } else {
        CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16
    };
    let mut map = std::mem::MaybeUninit::<CUtensorMap>::uninit();
    // SAFETY: rank 4 with 4 dims, boxes and element strides and 3 strides; the driver writes
    // `map` (host memory only, nothing is enqueued).
    unsafe {
        cuTensorMapEncodeTiled(
            map.as_mut_ptr(),
            data_type,
            4,
            base as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            element_strides.as_ptr(),
            CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
        .result()
        .map_err(driver_error)?;
        Ok(TensorMap(map.assume_init()))
    }
}

/// Whether the fused kernel is the Hopper wgmma one (see the module comment).
pub fn uses_wgmma(gpu: &Gpu) -> bool {
    gpu.info.compute_capability == (9, 0)
        && std::env::var("SILIREP_CUDA_FLASH").as_deref() != Ok("mma")
}

/// Enqueues the fused kernel.
pub fn launch_flash(
    gpu: &Gpu,
    elem: ElemType,
    layout: &FlashLayout,
    q: u64,
    k: u64,
    v: u64,
    o: u64,
) -> Result<(), KernelError> {
    let wgmma = uses_wgmma(gpu);
    let f = gpu.function(&format!(
        "flash_attention_{}{}",
        if wgmma { "wgmma_" } else { "" },
        elem.half_suffix()?
    ))?;
    let grid_dim = (
        layout.seq / FLASH_BLOCK_M as u32,
        layout.batches * layout.heads,
        1,
    );
    let scale_log2 = std::f32::consts::LOG2_E / (FLASH_HEAD_DIM as f32).sqrt();
    let causal = layout.causal as u32;
    let (qb, qh, qr) = layout.q_strides;
    let (kb, kh, kr) = layout.kv_strides;
    if wgmma {
        let kv_heads = layout.heads / layout.kv_group;
        let map_q = tensor_map(
            elem,
            q,
            (layout.seq, layout.heads, layout.batches),
            layout.q_strides,
        )?;
        let map_k = tensor_map(
            elem,
            k,
            (layout.seq, kv_heads, layout.batches),
            layout.kv_strides,
        )?;
        let map_v = tensor_map(
            elem,
            v,
            (layout.seq, kv_heads, layout.batches),
            layout.kv_strides,
        )?;
        // Persistent: one block per SM walks the (row block, batch, head) items.
        let items = grid_dim.0 * grid_dim.1;
        let cfg = LaunchConfig {
            grid_dim: (items.min(gpu.info.sm_count.max(1)), 1, 1),
            block_dim: (FLASH_WGMMA_THREADS, 1, 1),
            shared_mem_bytes: crate::sources::FLASH_WGMMA_SMEM_BYTES,
        };
        let mut launch = gpu.stream.launch_builder(f);
        launch
            .arg(&map_q)
            .arg(&map_k)
            .arg(&map_v)
            .arg(&o)
            .arg(&layout.seq)
            .arg(&layout.heads)
            .arg(&layout.kv_group)
            .arg(&items);
        launch
            .arg(&qb)
            .arg(&qh)
            .arg(&qr)
            .arg(&scale_log2)
            .arg(&causal);
        // SAFETY: the argument list matches flash_attention_wgmma_* in attention.cu (O has Q's
        // strides), and the tensor maps cover exactly the rows the layout describes.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        return Ok(());
    }
    let cfg = LaunchConfig {
        grid_dim,
        block_dim: (FLASH_THREADS, 1, 1),
        shared_mem_bytes: crate::sources::FLASH_SMEM_BYTES,
    };
    let mut launch = gpu.stream.launch_builder(f);
    launch
        .arg(&q)
        .arg(&k)
        .arg(&v)
        .arg(&o)
        .arg(&layout.seq)
        .arg(&layout.heads)
        .arg(&layout.kv_group);
    launch
        .arg(&qb)
        .arg(&qh)
        .arg(&qr)
        .arg(&kb)
        .arg(&kh)
        .arg(&kr)
        .arg(&scale_log2)
        .arg(&causal);
    // SAFETY: the argument list matches flash_attention_* in attention.cu, and the buffers
    // hold every row the strides reach.
    unsafe { launch.launch(cfg) }.map_err(driver_error)?;
    Ok(())
}

/// The naive path's two GEMMs and its score buffer.
struct Naive {
    qk: MatmulPlan,
    pv: MatmulPlan,
    scores: Buffer,
}

pub struct Attention<'a> {
    gpu: &'a Gpu,
    blas: Blas,
    implementation: AttentionImpl,
    elem: ElemType,
    heads: u64,
    seq: u64,
    dim: u64,
    q: Buffer,
    k: Buffer,
    v: Buffer,
    o: Buffer,
    naive: Option<Naive>,
    group: u32,
    causal: bool,
}

/// The attention computed: `batch_heads` independent heads of `seq` rows × `dim` columns.
#[derive(Debug, Clone, Copy)]
pub struct Problem {
    pub batch_heads: u64,
    pub seq: u64,
    pub dim: u64,
    pub causal: bool,
}

impl<'a> Attention<'a> {
    pub fn prepare(
        gpu: &'a Gpu,
        implementation: AttentionImpl,
        problem: Problem,
        dtype: Dtype,
        seed: u64,
    ) -> Result<Attention<'a>, KernelError> {
        let Problem {
            batch_heads,
            seq,
            dim,
            causal,
        } = problem;
        check_shape(implementation, seq, dim)?;
        let elem = ElemType::of(dtype)?;
        elem.half_suffix()?;
        let len = (batch_heads * seq * dim) as usize;
        let bytes = len * elem.size_bytes();
        let make = |tag: u64, bound: f32, what: &str| -> Result<Buffer, KernelError> {
            let buf = gpu.alloc(bytes, what)?;
            gpu.fill(buf.ptr, len, elem, bound, seed ^ tag)?;
            Ok(buf)
        };
        // Q in ±4 gives logits of standard deviation ~1.3: a peaked enough softmax that a
        // kernel mixing up keys or rows cannot pass verification by averaging to the mean.
        let (q, k, v) = (
            make(1, 4.0, "attention Q")?,
            make(2, 1.0, "attention K")?,
            make(3, 1.0, "attention V")?,
        );
        let o = gpu.alloc(bytes, "attention O")?;
        let blas = Blas::new(gpu)?;
        let mut kernel = Attention {
            gpu,
            blas,
            implementation,
            elem,
            heads: batch_heads,
            seq,
            dim,
            q,
            k,
            v,
            o,
            naive: None,
            group: 1,
            causal,
        };
        if implementation == AttentionImpl::Naive {
            kernel.naive = Some(kernel.build_naive()?);
        }
        kernel.group = gpu.group_for(|| kernel.run_once())?;
        Ok(kernel)
    }

    fn build_naive(&self) -> Result<Naive, KernelError> {
        let (bh, s, d) = (self.heads, self.seq, self.dim);
        let scores = self.gpu.alloc(
            (bh * s * s) as usize * self.elem.size_bytes(),
            "attention scores",
        )?;
        let types = GemmTypes::of(if self.elem == ElemType::Bf16 {
            Dtype::Bf16
        } else {
            Dtype::F16
        })?;
        let qk_shape = GemmShape {
            batch: bh,
            strides: (s * d, s * d, s * s),
            alpha: 1.0 / (d as f32).sqrt(),
            ..GemmShape::single(s, s, d, true)
        };
        let pv_shape = GemmShape {
            batch: bh,
            strides: (s * s, s * d, s * d),
            ..GemmShape::single(s, d, s, false)
        };
        let mut qk = MatmulPlan::new(self.gpu, &self.blas, qk_shape, types)?;
        let mut pv = MatmulPlan::new(self.gpu, &self.blas, pv_shape, types)?;
        qk.autotune(self.gpu, self.q.ptr, self.k.ptr, scores.ptr)?;
        pv.autotune(self.gpu, scores.ptr, self.v.ptr, self.o.ptr)?;
        Ok(Naive { qk, pv, scores })
    }

    fn run_naive(&self, naive: &Naive, out: u64) -> Result<(), KernelError> {
        naive.qk.run(self.q.ptr, self.k.ptr, naive.scores.ptr)?;
        let f = self
            .gpu
            .function(&format!("softmax_rows_{}", self.elem.half_suffix()?))?;
        // cols/32 threads (whole warps, 32..256): each thread holds up to 32 of its row's values.
        let threads = (self.seq as u32).div_ceil(32).div_ceil(32).clamp(1, 8) * 32;
        let cfg = LaunchConfig {
            grid_dim: ((self.heads * self.seq) as u32, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        let cols = self.seq as u32;
        let causal = self.causal as u32;
        let mut launch = self.gpu.stream.launch_builder(f);
        launch.arg(&naive.scores.ptr).arg(&cols).arg(&causal);
        // SAFETY: one block per row of the [heads·seq × seq] score matrix.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        naive.pv.run(naive.scores.ptr, self.v.ptr, out)
    }

    fn flash_layout(&self) -> FlashLayout {
        let (s, d) = (self.seq, self.dim);
        FlashLayout {
            seq: s as u32,
            heads: self.heads as u32,
            kv_group: 1,
            batches: 1,
            q_strides: (0, s * d, d),
            kv_strides: (0, s * d, d),
            causal: self.causal,
        }
    }

    fn run_once(&self) -> Result<(), KernelError> {
        match &self.naive {
            Some(naive) => self.run_naive(naive, self.o.ptr),
            None => launch_flash(
                self.gpu,
                self.elem,
                &self.flash_layout(),
                self.q.ptr,
                self.k.ptr,
                self.v.ptr,
                self.o.ptr,
            ),
        }
    }

    /// f64 attention for row `row` of head `head`, from the device's (rounded) inputs.
    fn reference_row(&self, head: usize, row: usize) -> Result<Vec<f64>, KernelError> {
        let (seq, d) = (self.seq as usize, self.dim as usize);
        // Causal: the keys up to the row itself.
        let s = if self.causal { row + 1 } else { seq };
        let base = head * seq * d;
        let q = self
            .gpu
            .download(self.q.ptr, self.elem, base + row * d, d)?;
        let k = self.gpu.download(self.k.ptr, self.elem, base, s * d)?;
        let v = self.gpu.download(self.v.ptr, self.elem, base, s * d)?;
        let logits: Vec<f64> = (0..s)
            .map(|j| dot(&q, &k[j * d..(j + 1) * d]) / (d as f64).sqrt())
            .collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let p: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = p.iter().sum();
        Ok((0..d)
            .map(|e| (0..s).map(|j| p[j] * v[j * d + e]).sum::<f64>() / total)
            .collect())
    }
}

impl PreparedKernel for Attention<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        self.gpu.time(iterations, self.group, || self.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        let zero = vec![0u8; self.o.bytes];
        // SAFETY: clears the output so stale results cannot pass.
        unsafe { cudarc::driver::result::memcpy_htod_sync(self.o.ptr, &zero) }
            .map_err(driver_error)?;
        self.run_once()?;
        let (s, d) = (self.seq as usize, self.dim as usize);
        let output = self.gpu.download(
            self.o.ptr,
            self.elem,
            0,
            self.o.bytes / self.elem.size_bytes(),
        )?;
        let (mut actual, mut expected) = (Vec::new(), Vec::new());
        // Sampled rows against the f64 reference.
        let mut rng = Rng::new(0xa77);
        let mut rows: Vec<(usize, usize)> = (0..4)
            .map(|_| (rng.index(self.heads as usize), rng.index(s)))
            .collect();
        if self.causal {
            // The mask's edges: the first row (key 0 alone), the last row of the first
            // 128-row block and the first of the next (a tile boundary for every kernel).
            let head = rng.index(self.heads as usize);
            rows.extend([0, 127, 128].map(|row| (head, row.min(s - 1))));
        }
        for &(head, row) in &rows {
            let reference = self.reference_row(head, row)?;
            actual.extend_from_slice(&output[(head * s + row) * d..][..d]);
            expected.extend(reference);
        }
        let mut method = format!(
            "{} sampled rows vs an f64 host reference{}",
            rows.len(),
            if self.causal { " (causal)" } else { "" }
        );
        if self.implementation == AttentionImpl::Fused {
            // Every entry against the naive path on the same inputs.
            let naive = self.build_naive()?;
            let reference_out = self.gpu.alloc(self.o.bytes, "naive reference output")?;
            self.run_naive(&naive, reference_out.ptr)?;
            let naive_out = self
                .gpu
                .download(reference_out.ptr, self.elem, 0, output.len())?;
            actual.extend_from_slice(&output);
            expected.extend(naive_out);
            method.push_str(", and every entry vs the naive (cuBLASLt + softmax) path");
        }
        // Outputs are weighted averages of values in ±1 (magnitude ~0.1; up to 1 in causal
        // attention's first rows, which average few values): an absolute bound of a few units
        // of the storage precision, room for the naive path's rounding of S and P to 16 bits,
        // yet far below what a wrong kernel (or an all-zero output) would give.
        let tolerance = 4.0 * self.elem.unit_roundoff();
        Ok(compare_outputs(&actual, &expected, tolerance, &method))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        match &self.naive {
            Some(naive) => {
                d.insert(
                    "qk_gemm".into(),
                    format!("cuBLASLt strided-batched, {}", naive.qk.describe()),
                );
                d.insert(
                    "pv_gemm".into(),
                    format!("cuBLASLt strided-batched, {}", naive.pv.describe()),
                );
                d.insert(
                    "softmax".into(),
                    "one block of seq/32 threads per row, in place, row kept in registers".into(),
                );
            }
            None => {
                d.insert(
                    "kernel".into(),
                    if uses_wgmma(self.gpu) {
                        "flash_attention_wgmma (attention.cu), FlashAttention-3's structure: a persistent grid (one block of 3 warpgroups per SM) over items of 128 query rows of one head, a producer warpgroup whose one thread loads Q once and 128-key K and V tiles by TMA (128-byte swizzle) into a 2-stage mbarrier ring, two consumer warpgroups of 64 rows each (setmaxnreg 24/240) running S = Q·Kᵀ (wgmma m64n128k16 from shared memory) and O += P·V (P in registers) with f32 accumulation, online softmax with paired f16/bf16 ex2; S of tile j issued with P·V of tile j − 1 so the softmax overlaps it, and the two consumers' GEMMs ping-ponged by named barriers; the next item's loads overlap the current one's last tiles and output"
                    } else {
                        "flash_attention (attention.cu): mma.sync m16n8k16 tensor cores, f32 accumulation, online softmax with paired f16/bf16 ex2, 128 query rows (4 warps × 32) × 64-key tiles, 2 blocks per SM, cp.async double buffering"
                    }
                    .into(),
                );
            }
        }
        if self.causal {
            d.insert(
                "mask".into(),
                if self.naive.is_some() {
                    "causal: applied in the softmax; both GEMMs compute the full product".into()
                } else {
                    "causal: key tiles past the diagonal skipped, the diagonal tile masked".into()
                },
            );
        }
        d.extend(crate::device::grouped_timing_detail(self.group, "runs"));
        d
    }
}
