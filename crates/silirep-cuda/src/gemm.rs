//! GEMMs through cuBLASLt: the `gemm` kernel itself, and the projections and batched products
//! that attention and the layer are built from.
//!
//! Matrices are row-major, as in the frameworks. cuBLASLt is column-major, so a row-major
//! `C = A·op(B)` is computed as the column-major `Cᵀ = op(B)ᵀ·Aᵀ`: B is passed as cuBLASLt's
//! "A" and A as its "B". With B stored `[n×k]` (the `nn.Linear` weight layout) that is the
//! "TN" form FP8 requires and every Hopper kernel supports.
//!
//! The heuristic's top candidates are each timed on the real operands and the fastest kept:
//! the heuristic's first choice is not always the fastest for a given shape.

use crate::device::{Buffer, Gpu, driver_error};
use crate::host::{ElemType, Rng, dot};
use cudarc::cublaslt::result as lt;
use cudarc::cublaslt::sys;
use cudarc::cublaslt::sys::{
    cublasComputeType_t, cublasLtMatmulDescAttributes_t as DescAttr,
    cublasLtMatrixLayoutAttribute_t as LayoutAttr, cudaDataType,
};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;
use std::ffi::c_void;

const WORKSPACE_BYTES: usize = 64 << 20;
const CANDIDATES: usize = 8;
/// How long the GEMM kernel runs its first candidate before ranking them all.
const AUTOTUNE_SETTLE_S: f64 = 0.3;

/// The cuBLASLt handle and its workspace, shared by every plan.
pub struct Blas {
    handle: sys::cublasLtHandle_t,
    workspace: Buffer,
    /// 1.0f on the device: FP8 scale factors.
    one: Buffer,
}

impl Blas {
    pub fn new(gpu: &Gpu) -> Result<Blas, KernelError> {
        let handle = lt::create_handle().map_err(blas_error)?;
        let workspace = gpu.alloc(WORKSPACE_BYTES, "cuBLASLt workspace")?;
        let one = gpu.alloc(4, "FP8 scale")?;
        // SAFETY: 4 bytes copied into a 4-byte allocation.
        unsafe { cudarc::driver::result::memcpy_htod_sync(one.ptr, &[1.0f32]) }
            .map_err(driver_error)?;
        Ok(Blas {
            handle,
            workspace,
            one,
        })
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        unsafe {
            let _ = lt::destroy_handle(self.handle);
        }
    }
}

pub fn blas_error(e: lt::CublasError) -> KernelError {
    match e.0 {
        sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED => {
            KernelError::Unsupported("cuBLASLt: not supported for this shape or type".into())
        }
        sys::cublasStatus_t::CUBLAS_STATUS_ALLOC_FAILED => {
            KernelError::OutOfMemory("cuBLASLt could not allocate".into())
        }
        other => KernelError::Backend(format!("cuBLASLt: {other:?}")),
    }
}

/// Types of one product: operands, result, and how the tensor cores compute.
#[derive(Debug, Clone, Copy)]
pub struct GemmTypes {
    pub input: ElemType,
    pub output: ElemType,
    pub compute: cublasComputeType_t,
}

impl GemmTypes {
    pub fn of(dtype: Dtype) -> Result<GemmTypes, KernelError> {
        let input = ElemType::of(dtype)?;
        Ok(GemmTypes {
            input,
            // FP8 products write bf16 (the byte count in silirep-core assumes a 16-bit result).
            output: if dtype == Dtype::Fp8E4m3 {
                ElemType::Bf16
            } else {
                input
            },
            compute: if dtype == Dtype::Tf32 {
                cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
            } else {
                cublasComputeType_t::CUBLAS_COMPUTE_32F
            },
        })
    }
}

fn cuda_type(e: ElemType) -> cudaDataType {
    match e {
        ElemType::F64 => cudaDataType::CUDA_R_64F,
        ElemType::F32 => cudaDataType::CUDA_R_32F,
        ElemType::F16 => cudaDataType::CUDA_R_16F,
        ElemType::Bf16 => cudaDataType::CUDA_R_16BF,
        ElemType::E4m3 => cudaDataType::CUDA_R_8F_E4M3,
    }
}

/// `C[m×n] = alpha · op(A) · op(B)`: A stored `[m×k]`, or `[k×m]` when `a_transposed` (weight
/// gradients, `dYᵀ·X`); B stored `[k×n]`, or `[n×k]` when `b_transposed`. `batch` times with
/// the given element strides between consecutive matrices.
#[derive(Debug, Clone, Copy)]
pub struct GemmShape {
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub b_transposed: bool,
    pub a_transposed: bool,
    pub batch: u64,
    pub strides: (u64, u64, u64),
    pub alpha: f32,
}

impl GemmShape {
    pub fn single(m: u64, n: u64, k: u64, b_transposed: bool) -> GemmShape {
        GemmShape {
            m,
            n,
            k,
            b_transposed,
            a_transposed: false,
            batch: 1,
            strides: (0, 0, 0),
            alpha: 1.0,
        }
    }
}

/// A configured product with its chosen algorithm.
pub struct MatmulPlan {
    shape: GemmShape,
    desc: sys::cublasLtMatmulDesc_t,
    layouts: [sys::cublasLtMatrixLayout_t; 3],
    algo: Option<sys::cublasLtMatmulAlgo_t>,
    heuristics: Vec<sys::cublasLtMatmulHeuristicResult_t>,
    chosen: usize,
    handle: sys::cublasLtHandle_t,
    workspace: (u64, usize),
    stream: sys::cudaStream_t,
}

impl Drop for MatmulPlan {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        unsafe {
            for l in self.layouts {
                let _ = lt::destroy_matrix_layout(l);
            }
            let _ = lt::destroy_matmul_desc(self.desc);
        }
    }
}

unsafe fn set_desc<T>(
    desc: sys::cublasLtMatmulDesc_t,
    attr: DescAttr,
    value: &T,
) -> Result<(), KernelError> {
    // SAFETY: `value` is the attribute's documented type.
    unsafe {
        lt::set_matmul_desc_attribute(
            desc,
            attr,
            value as *const T as *const c_void,
            size_of::<T>(),
        )
    }
    .map_err(blas_error)
}

unsafe fn set_layout<T>(
    layout: sys::cublasLtMatrixLayout_t,
    attr: LayoutAttr,
    value: &T,
) -> Result<(), KernelError> {
    // SAFETY: as for `set_desc`.
    unsafe {
        lt::set_matrix_layout_attribute(
            layout,
            attr,
            value as *const T as *const c_void,
            size_of::<T>(),
        )
    }
    .map_err(blas_error)
}

impl MatmulPlan {
    pub fn new(
        gpu: &Gpu,
        blas: &Blas,
        shape: GemmShape,
        types: GemmTypes,
    ) -> Result<MatmulPlan, KernelError> {
        let GemmShape {
            m,
            n,
            k,
            b_transposed,
            a_transposed,
            ..
        } = shape;
        let desc =
            lt::create_matmul_desc(types.compute, cudaDataType::CUDA_R_32F).map_err(blas_error)?;
        // Column-major view: D(n×m) = op(B_store)·A_storeᵀ; see the module comment.
        let (b_rows, b_cols, b_ld) = if b_transposed { (k, n, k) } else { (n, k, n) };
        let (a_rows, a_cols, a_ld) = if a_transposed { (m, k, m) } else { (k, m, k) };
        let layouts = [
            lt::create_matrix_layout(cuda_type(types.input), b_rows, b_cols, b_ld as i64)
                .map_err(blas_error)?,
            lt::create_matrix_layout(cuda_type(types.input), a_rows, a_cols, a_ld as i64)
                .map_err(blas_error)?,
            lt::create_matrix_layout(cuda_type(types.output), n, m, n as i64)
                .map_err(blas_error)?,
        ];
        let mut plan = MatmulPlan {
            shape,
            desc,
            layouts,
            algo: None,
            heuristics: Vec::new(),
            chosen: 0,
            handle: blas.handle,
            workspace: (blas.workspace.ptr, blas.workspace.bytes),
            stream: gpu.stream.cu_stream() as sys::cudaStream_t,
        };
        // SAFETY: attribute values have the types cuBLASLt documents (i32 ops, u64 pointers,
        // i32 batch count, i64 strides, u64 workspace size).
        unsafe {
            let trans_a: i32 = if b_transposed { 1 } else { 0 }; // CUBLAS_OP_T / CUBLAS_OP_N
            set_desc(desc, DescAttr::CUBLASLT_MATMUL_DESC_TRANSA, &trans_a)?;
            let trans_b: i32 = if a_transposed { 1 } else { 0 };
            set_desc(desc, DescAttr::CUBLASLT_MATMUL_DESC_TRANSB, &trans_b)?;
            if types.input == ElemType::E4m3 {
                set_desc(
                    desc,
                    DescAttr::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                    &blas.one.ptr,
                )?;
                set_desc(
                    desc,
                    DescAttr::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                    &blas.one.ptr,
                )?;
            }
            if shape.batch > 1 {
                let (sa, sb, sc) = shape.strides;
                for (layout, stride) in layouts.iter().zip([sb, sa, sc]) {
                    set_layout(
                        *layout,
                        LayoutAttr::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                        &(shape.batch as i32),
                    )?;
                    set_layout(
                        *layout,
                        LayoutAttr::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                        &(stride as i64),
                    )?;
                }
            }
            let pref = lt::create_matmul_pref().map_err(blas_error)?;
            let ws = WORKSPACE_BYTES as u64;
            lt::set_matmul_pref_attribute(
                pref,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                &ws as *const u64 as *const c_void,
                size_of::<u64>(),
            )
            .map_err(blas_error)?;
            let mut results =
                vec![std::mem::zeroed::<sys::cublasLtMatmulHeuristicResult_t>(); CANDIDATES];
            let mut count = 0i32;
            let status = sys::cublasLtMatmulAlgoGetHeuristic(
                blas.handle,
                desc,
                layouts[0],
                layouts[1],
                layouts[2],
                layouts[2],
                pref,
                CANDIDATES as i32,
                results.as_mut_ptr(),
                &mut count,
            );
            let _ = lt::destroy_matmul_pref(pref);
            status.result().map_err(blas_error)?;
            results.truncate(count.max(0) as usize);
            results.retain(|r| r.state == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS);
            if results.is_empty() {
                return Err(KernelError::Unsupported(format!(
                    "cuBLASLt offers no algorithm for {:?}×{:?} → {:?} at m={m} n={n} k={k}",
                    types.input, types.input, types.output
                )));
            }
            plan.heuristics = results;
        }
        plan.algo = Some(plan.heuristics[0].algo);
        Ok(plan)
    }

    /// Enqueues `c = alpha·a·op(b)` on the stream.
    pub fn run(&self, a: u64, b: u64, c: u64) -> Result<(), KernelError> {
        self.run_beta(a, b, c, 0.0)
    }

    /// Enqueues `c = alpha·a·op(b) + beta·c`: `beta` 1 adds a product to `c` (gradients that
    /// are sums of products) without a separate elementwise pass.
    pub fn run_beta(&self, a: u64, b: u64, c: u64, beta: f32) -> Result<(), KernelError> {
        self.run_beta_on(self.stream, a, b, c, beta)
    }

    /// [`Self::run`] on another stream than the plan's (a stream being captured into a CUDA
    /// graph: the backend's own stream is the legacy default stream, which cannot be).
    pub fn run_on(
        &self,
        stream: sys::cudaStream_t,
        a: u64,
        b: u64,
        c: u64,
    ) -> Result<(), KernelError> {
        self.run_beta_on(stream, a, b, c, 0.0)
    }

    fn run_beta_on(
        &self,
        stream: sys::cudaStream_t,
        a: u64,
        b: u64,
        c: u64,
        beta: f32,
    ) -> Result<(), KernelError> {
        let algo = self
            .algo
            .as_ref()
            .map_or(std::ptr::null(), |a| a as *const _);
        // SAFETY: pointers address allocations sized for this plan's shape by the caller.
        unsafe {
            lt::matmul(
                self.handle,
                self.desc,
                &self.shape.alpha as *const f32 as *const c_void,
                &beta as *const f32 as *const c_void,
                b as *const c_void,
                self.layouts[0],
                a as *const c_void,
                self.layouts[1],
                c as *const c_void,
                self.layouts[2],
                c as *mut c_void,
                self.layouts[2],
                algo,
                self.workspace.0 as *mut c_void,
                self.workspace.1,
                stream,
            )
        }
        .map_err(blas_error)
    }

    /// Times each heuristic candidate on these operands and keeps the fastest. The candidates
    /// take turns, round after round, in forward order and then backward, and each is ranked
    /// by its median over the rounds: the GPU's clock drifts while they are timed (it falls
    /// from boost to the power-capped level within a fraction of a second), and timing them
    /// one after another, or always in the same order, would favour whichever ran first.
    pub fn autotune(&mut self, gpu: &Gpu, a: u64, b: u64, c: u64) -> Result<(), KernelError> {
        const ROUNDS: usize = 6;
        if self.heuristics.len() == 1 {
            return Ok(());
        }
        // `None` once a candidate failed to launch here (workspace, alignment): left out.
        let mut rounds: Vec<Option<Vec<f64>>> = vec![Some(Vec::new()); self.heuristics.len()];
        for round in 0..ROUNDS {
            let mut order: Vec<(usize, &mut Option<Vec<f64>>)> =
                rounds.iter_mut().enumerate().collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for (index, slot) in order {
                let Some(times) = slot else { continue };
                self.algo = Some(self.heuristics[index].algo);
                if self.run(a, b, c).is_err() {
                    *slot = None;
                    continue;
                }
                let best_of_two = gpu.time(2, 1, || self.run(a, b, c))?;
                times.push(best_of_two.iter().cloned().fold(f64::INFINITY, f64::min));
            }
        }
        let ranked = rounds
            .iter()
            .enumerate()
            .filter_map(|(index, times)| {
                Some((silirep_core::median::median(times.as_ref()?)?, index))
            })
            .min_by(|x, y| x.0.total_cmp(&y.0));
        self.chosen = ranked.map_or(0, |(_, index)| index);
        self.algo = Some(self.heuristics[self.chosen].algo);
        Ok(())
    }

    /// Which algorithm runs: for the result file's details.
    pub fn describe(&self) -> String {
        let algo = &self.heuristics[self.chosen].algo;
        let read = |attr: sys::cublasLtMatmulAlgoConfigAttributes_t| {
            let mut value = 0u32;
            let mut written = 0usize;
            // SAFETY: the id attributes are 32-bit integers.
            unsafe {
                sys::cublasLtMatmulAlgoConfigGetAttribute(
                    algo,
                    attr,
                    &mut value as *mut u32 as *mut c_void,
                    4,
                    &mut written,
                )
            };
            value
        };
        format!(
            "heuristic candidate {} of {} (algo id {}, tile id {}, workspace {} B)",
            self.chosen + 1,
            self.heuristics.len(),
            read(sys::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_ID),
            read(sys::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_TILE_ID),
            self.heuristics[self.chosen].workspaceSize
        )
    }
}

/// Tolerance for a product of exactly-known inputs, relative to max(1, |reference|): the
/// result's rounding plus accumulation error growing like √k. TF32 also rounds its inputs
/// (10-bit mantissa) inside the tensor core, an error that grows like √k too. A wrong kernel
/// (transposed operand, wrong tile) is off by O(1) relative, far above every bound here.
pub fn tolerance(dtype: Dtype, types: GemmTypes, k: u64) -> f64 {
    let sqrt_k = (k as f64).sqrt();
    let accumulate = 16.0 * 2f64.powi(-24) * sqrt_k;
    match dtype {
        Dtype::Tf32 => 4.0 * 2f64.powi(-11) * sqrt_k,
        Dtype::F32 => accumulate,
        // Hopper's FP8 tensor cores keep about 14 mantissa bits in their accumulator between
        // cuBLASLt's promotions to f32 (DeepSeek-V3 report, §3.3.2): an error growing like √k.
        Dtype::Fp8E4m3 => 2.0 * types.output.unit_roundoff() + 2f64.powi(-14) * sqrt_k,
        _ => 2.0 * types.output.unit_roundoff() + accumulate,
    }
}

pub struct Gemm<'a> {
    gpu: &'a Gpu,
    _blas: Blas,
    plan: MatmulPlan,
    dtype: Dtype,
    types: GemmTypes,
    m: u64,
    n: u64,
    k: u64,
    a: Buffer,
    b: Buffer,
    c: Buffer,
    group: u32,
}

impl<'a> Gemm<'a> {
    pub fn prepare(
        gpu: &'a Gpu,
        m: u64,
        n: u64,
        k: u64,
        dtype: Dtype,
        seed: u64,
    ) -> Result<Gemm<'a>, KernelError> {
        let types = GemmTypes::of(dtype)?;
        if types.input == ElemType::E4m3 && gpu.info.compute_capability < (8, 9) {
            return Err(KernelError::Unsupported(format!(
                "FP8 GEMM needs compute capability 8.9 or newer; this GPU is {}.{}",
                gpu.info.compute_capability.0, gpu.info.compute_capability.1
            )));
        }
        let es = types.input.size_bytes();
        let a = gpu.alloc((m * k) as usize * es, "GEMM A")?;
        let b = gpu.alloc((n * k) as usize * es, "GEMM B")?;
        let c = gpu.alloc((m * n) as usize * types.output.size_bytes(), "GEMM C")?;
        gpu.fill(a.ptr, (m * k) as usize, types.input, 1.0, seed)?;
        gpu.fill(b.ptr, (n * k) as usize, types.input, 1.0, seed ^ 0xb)?;
        let blas = Blas::new(gpu)?;
        let mut plan = MatmulPlan::new(gpu, &blas, GemmShape::single(m, n, k, true), types)?;
        // Rank the candidates at the clock they will be timed at: a large GEMM drives the GPU
        // to its power cap, and an algorithm that wins at boost clock may not win there.
        gpu.run_for(AUTOTUNE_SETTLE_S, || plan.run(a.ptr, b.ptr, c.ptr))?;
        plan.autotune(gpu, a.ptr, b.ptr, c.ptr)?;
        let group = gpu.group_for(|| plan.run(a.ptr, b.ptr, c.ptr))?;
        Ok(Gemm {
            gpu,
            _blas: blas,
            plan,
            dtype,
            types,
            m,
            n,
            k,
            a,
            b,
            c,
            group,
        })
    }
}

impl PreparedKernel for Gemm<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let (a, b, c) = (self.a.ptr, self.b.ptr, self.c.ptr);
        self.gpu
            .time(iterations, self.group, || self.plan.run(a, b, c))
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        let zero = vec![0u8; self.c.bytes];
        // SAFETY: clears the whole output so a launch that wrote nothing cannot pass.
        unsafe { cudarc::driver::result::memcpy_htod_sync(self.c.ptr, &zero) }
            .map_err(driver_error)?;
        self.plan.run(self.a.ptr, self.b.ptr, self.c.ptr)?;
        let mut rng = Rng::new(0x6e33);
        let rows = rng.distinct(self.m as usize, 16);
        let cols = rng.distinct(self.n as usize, 16);
        let k = self.k as usize;
        let b_rows: Vec<Vec<f64>> = cols
            .iter()
            .map(|&j| self.gpu.download(self.b.ptr, self.types.input, j * k, k))
            .collect::<Result<_, _>>()?;
        let (mut actual, mut expected) = (Vec::new(), Vec::new());
        for &i in &rows {
            let a_row = self.gpu.download(self.a.ptr, self.types.input, i * k, k)?;
            let c_row = self.gpu.download(
                self.c.ptr,
                self.types.output,
                i * self.n as usize,
                self.n as usize,
            )?;
            for (jj, &j) in cols.iter().enumerate() {
                actual.push(c_row[j]);
                expected.push(dot(&a_row, &b_rows[jj]));
            }
        }
        Ok(compare_outputs(
            &actual,
            &expected,
            tolerance(self.dtype, self.types, self.k),
            "16×16 sampled entries vs f64 dot products of the same (rounded) inputs",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            ("library".into(), "cuBLASLt".into()),
            ("algorithm".into(), self.plan.describe()),
            (
                "layout".into(),
                "row-major A[m×k], B stored [n×k] (TN in cuBLASLt terms)".into(),
            ),
            ("compute".into(), format!("{:?}", self.types.compute)),
            ("output".into(), format!("{:?}", self.types.output)),
        ]);
        d.extend(crate::device::grouped_timing_detail(self.group, "launches"));
        d
    }
}
