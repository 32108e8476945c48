//! `decode`: one generation step of `batch` sequences through a Mistral-shaped layer stack in
//! f16/bf16, with attention of each new token over a KV cache of `context` positions.
//!
//! Decode at small batches is a read of every weight once per token, so the design is a read
//! kernel with arithmetic on the side (decode.cu says how):
//!
//! - up to [`GEMV_MAX_BATCH`] tokens: five kernels per layer over fused weights — QKV (RMSNorm
//!   folded in, the new key and value written straight into the cache), flash-decoding
//!   attention, output projection + residual, gate/up + SwiGLU (norm folded in), down
//!   projection + residual — tensor-core GEMVs over weights stored in 16-row tiles
//!   ([`tiled_offset`]), their chunk depth and grid tuned per stage, launched with
//!   programmatic dependent launch when that is faster;
//! - above it: cuBLASLt GEMMs over the same fused weights, the norms, residual adds and the
//!   cache append as small kernels, the same attention kernel.
//!
//! Either way the whole step (every layer) is captured once into a CUDA graph and each timed
//! iteration is one graph launch, so the host's launch overhead is not what is measured.
//!
//! Memory-bandwidth utilisation (MBU) is reported against this GPU's own read bandwidth,
//! measured in `prepare` with the `bandwidth_read` kernel over a buffer far larger than L2.
//!
//! Verification is stage by stage on the last layer, against f64 recomputed on the host from
//! each stage's inputs as stored on the device (layer input, query, KV cache, attention output,
//! residual stream, SwiGLU output) and the weights.

use crate::bandwidth::Bandwidth;
use crate::device::{Buffer, Gpu, driver_error};
use crate::gemm::{Blas, GemmShape, GemmTypes, MatmulPlan};
use crate::host::{ElemType, Rng, dot};
use cudarc::driver::sys::{self, CUlaunchAttributeID, CUstreamCaptureMode};
use cudarc::driver::{CudaGraph, CudaStream, LaunchConfig, PushKernelArg, result};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Verification, VerificationStatus};
use silirep_core::{BandwidthOp, Dtype, KernelError, LayerShape, PreparedKernel};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Arc;

const EPS: f32 = LayerShape::RMS_NORM_EPSILON;
/// Tokens one tensor-core GEMV handles (the mma's n = 8; `DEC_MAX_BATCH` in decode.cu).
pub const GEMV_MAX_BATCH: u64 = 8;
/// Rows per GEMV tile (`DEC_TILE` in decode.cu): one mma's m.
const TILE: u64 = 16;
/// The columns every GEMV's k must be a multiple of: the kernels need whole chunks, and the
/// deepest is 8 steps of 32 columns.
const CHUNK: u64 = 256;
/// Chunk depths the GEMV kernels are compiled with (`decode_qkv2_f16`, `decode_qkv4_f16`, …):
/// deeper keeps more loads in flight per warp, shallower spreads a matrix over more warps.
const DEPTHS: [u32; 3] = [2, 4, 8];
const GEMV_THREADS: u32 = 256;
/// The attention kernel's fixed geometry (`ATT_*` in decode.cu).
const ATT_HEAD_DIM: u64 = 128;
const ATT_GROUP: u64 = 4;
const ATT_TILE: u64 = 64;
/// `ATT_MAX_SPLITS` in decode.cu: the most splits of one (token, KV head) its merge can hold.
const ATT_MAX_SPLITS: u64 = 128;
const ATT_THREADS: u32 = 128;
/// Floats per (token, kv head, split) partial: 4 heads × 128 outputs, then (m, l) per head.
const PARTIAL_FLOATS: u64 = ATT_GROUP * ATT_HEAD_DIM + 2 * ATT_GROUP;
/// The reference read: large against any L2, small against the memory left after the weights.
const READ_REFERENCE_BYTES: u64 = 4 << 30;

/// One layer's weights, fused so each projection stage is one matrix read front to back:
/// `qkv` [q; k; v] rows, `gate_up` gate and up rows interleaved in 16-row tiles (8 gate rows,
/// then the same 8 up rows), all stored `[out×in]`.
struct Weights {
    qkv: Buffer,
    o: Buffer,
    gate_up: Buffer,
    down: Buffer,
}

/// Offset (in elements) of element (`row`, `col`) of a `[rows×k]` matrix in the GEMV path's
/// tiled layout (decode.cu explains it): 16-row tiles, each k/32 blocks of 512 elements, a
/// block holding rows 0–7 then 8–15 of the tile as 32 lanes × 8 consecutive columns, lane
/// (g, t) = row g, columns 8t…8t+7 of the block's 32.
pub fn tiled_offset(row: u64, col: u64, k: u64) -> u64 {
    let (tile, r) = (row / TILE, row % TILE);
    let (half, g) = (r / 8, r % 8);
    let (step, t, e) = (col / 32, (col % 32) / 8, col % 8);
    tile * TILE * k + step * 512 + half * 256 + (g * 4 + t) * 8 + e
}

/// The physical row of gate row `i` (`up` false) or up row `i` in the interleaved matrix.
pub fn gate_up_row(i: u64, up: bool) -> u64 {
    (i / 8) * 16 + i % 8 + if up { 8 } else { 0 }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Qkv = 0,
    Attention,
    Output,
    GateUp,
    Down,
}
const STAGES: [Stage; 5] = [
    Stage::Qkv,
    Stage::Attention,
    Stage::Output,
    Stage::GateUp,
    Stage::Down,
];
impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Qkv => "qkv",
            Stage::Attention => "attention",
            Stage::Output => "o",
            Stage::GateUp => "gate_up",
            Stage::Down => "down",
        }
    }
}

/// cuBLASLt plans and their intermediates, for batches above [`GEMV_MAX_BATCH`].
struct GemmPath {
    _blas: Blas,
    qkv: MatmulPlan,
    o: MatmulPlan,
    gate_up: MatmulPlan,
    down: MatmulPlan,
    normed: Buffer,
    qkv_out: Buffer,
    o_out: Buffer,
    gate_up_out: Buffer,
    down_out: Buffer,
}

#[derive(Clone, Copy)]
enum Arg {
    Ptr(u64),
    U32(u32),
    F32(f32),
}

pub struct Decode<'a> {
    gpu: &'a Gpu,
    /// The stream graphs are captured on: the backend's stream is the legacy default stream,
    /// which cannot be captured. Graphs are then launched on the backend's stream, where the
    /// timing events are.
    side: Arc<CudaStream>,
    capturing: Cell<bool>,
    shape: LayerShape,
    elem: ElemType,
    batch: u64,
    context: u64,
    /// Cache slots per (sequence, kv head): `context`, at least 1 (the new token's own).
    slots: u64,
    layers: Vec<Weights>,
    caches: Vec<[Buffer; 2]>,
    input: Buffer,
    y: [Buffer; 2],
    x2: Buffer,
    /// The query (GEMV path); the GEMM path reads it from its QKV output.
    q: Buffer,
    attn: Buffer,
    act: Buffer,
    partial: Buffer,
    counters: Buffer,
    splits: u64,
    chunk: u64,
    gemm: Option<GemmPath>,
    pdl: bool,
    /// Attention requests its first tile of cached keys and values before it waits on the
    /// QKV kernel (`decode_attention_early_*`; with programmatic dependent launch only).
    early_cache: bool,
    graph: Option<CudaGraph>,
    /// Seconds per step of each variant tried in `prepare`, and of each stage alone.
    variants: Vec<(String, f64)>,
    stages: Vec<(Stage, f64)>,
    /// Most blocks each stage's GEMV launches (`Stage as usize`): a smaller grid loops over
    /// the 16-row tiles, chosen per stage by timing in `prepare`.
    grid_caps: [u64; 5],
    /// Chunk depth (one of [`DEPTHS`]) of each stage's GEMV, tuned with the grid.
    depths: [u32; 5],
    /// (stage, depth, blocks, seconds for every layer) of each GEMV variant tried.
    grid_tries: Vec<(Stage, u32, u64, f64)>,
    /// Launch variants the driver refused to capture, with its error.
    failures: Vec<String>,
    read_bandwidth: f64,
    /// Bytes one step moves by the spec's formula, for MBU.
    step_bytes: Option<f64>,
    weight_bytes: f64,
    /// Step times since timing began (`begin_timing`), for MBU.
    samples: Vec<f64>,
}

fn dims(shape: &LayerShape) -> (u64, u64, u64, u64) {
    (
        shape.hidden,
        shape.heads * shape.head_dim,
        shape.kv_heads * shape.head_dim,
        shape.intermediate,
    )
}

/// The harness's median (mean of the middle two for even counts); NaN for no values, which
/// never wins a comparison in the tuners.
fn median(values: &[f64]) -> f64 {
    silirep_core::median::median(values).unwrap_or(f64::NAN)
}

impl<'a> Decode<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        gpu: &'a Gpu,
        shape: LayerShape,
        batch: u64,
        layers: u64,
        context: u64,
        dtype: Dtype,
        step_bytes: Option<f64>,
        seed: u64,
    ) -> Result<Decode<'a>, KernelError> {
        let elem = ElemType::of(dtype)?;
        elem.half_suffix()?;
        let (h, qd, kvd, inter) = dims(&shape);
        if batch == 0 || layers == 0 {
            return Err(KernelError::Unsupported(
                "decode needs at least one sequence and one layer".into(),
            ));
        }
        if context > 0
            && (shape.head_dim != ATT_HEAD_DIM
                || shape.kv_heads == 0
                || shape.heads != ATT_GROUP * shape.kv_heads)
        {
            return Err(KernelError::Unsupported(format!(
                "decode attention over a KV cache needs head_dim {ATT_HEAD_DIM} and {ATT_GROUP} query heads per KV head; got head_dim {}, {} heads, {} KV heads",
                shape.head_dim, shape.heads, shape.kv_heads
            )));
        }
        if [h, qd, inter].iter().any(|d| !d.is_multiple_of(CHUNK))
            || !(qd + 2 * kvd).is_multiple_of(TILE)
            || !inter.is_multiple_of(TILE / 2)
            || shape.head_dim == 0
        {
            return Err(KernelError::Unsupported(format!(
                "decode needs hidden, heads·head_dim and intermediate multiples of {CHUNK} and (heads + 2·kv_heads)·head_dim a multiple of {TILE}"
            )));
        }
        if context > u64::from(u32::MAX) / 2 {
            return Err(KernelError::Unsupported(format!(
                "context {context} is beyond the kernels' 32-bit positions"
            )));
        }
        let es = elem.size_bytes() as u64;
        let slots = context.max(1);
        let per_layer = (qd + 2 * kvd) * h + h * qd + 2 * inter * h + h * inter;
        let weight_bytes = layers * per_layer * es;
        let cache_bytes = layers * 2 * batch * kvd * slots * es;
        let need = weight_bytes + cache_bytes + READ_REFERENCE_BYTES;
        if need + (2 << 30) > gpu.free_bytes() {
            return Err(KernelError::OutOfMemory(format!(
                "{layers} layer(s) of {dtype} weights ({weight_bytes} bytes), a KV cache of {context} positions × {batch} sequences ({cache_bytes} bytes) and the {READ_REFERENCE_BYTES}-byte read reference need {need} bytes; {} free on the GPU",
                gpu.free_bytes()
            )));
        }
        // The read reference first, on an otherwise idle GPU, then freed.
        let read_bandwidth = measure_read_bandwidth(gpu, seed)?;

        let mut all = Vec::new();
        let mut caches = Vec::new();
        for l in 0..layers {
            let make = |rows: u64, cols: u64, tag: u64| {
                gpu.random_weights(rows, cols, elem, seed ^ (l << 8) ^ tag, "decode weights")
            };
            all.push(Weights {
                qkv: make(qd + 2 * kvd, h, 1)?,
                o: make(h, qd, 4)?,
                gate_up: make(2 * inter, h, 5)?,
                down: make(h, inter, 7)?,
            });
            let cache = |tag: u64| -> Result<Buffer, KernelError> {
                let n = batch * kvd * slots;
                let buf = gpu.alloc((n * es) as usize, "KV cache")?;
                // Keys and values of the earlier tokens: O(1), like the new ones.
                gpu.fill(buf.ptr, n as usize, elem, 1.0, seed ^ (l << 8) ^ tag)?;
                Ok(buf)
            };
            caches.push([cache(0x21)?, cache(0x22)?]);
        }
        let act = |width: u64, what: &str| gpu.alloc((batch * width * es) as usize, what);
        let input = act(h, "decode input")?;
        gpu.fill(input.ptr, (batch * h) as usize, elem, 1.0, seed ^ 0x1f)?;
        let pairs = batch * shape.kv_heads.max(1);
        let tiles = context.div_ceil(ATT_TILE).max(1);
        // Enough blocks for every SM several times over; no split shorter than one tile.
        let wanted = (4 * u64::from(gpu.info.sm_count)).div_ceil(pairs);
        // At most ATT_MAX_SPLITS (decode.cu): the merge holds every split's softmax state.
        let splits_wanted = wanted.clamp(1, tiles.min(ATT_MAX_SPLITS));
        let chunk = ATT_TILE * tiles.div_ceil(splits_wanted);
        let splits = context.div_ceil(chunk).max(1);
        let gemm = if batch > GEMV_MAX_BATCH {
            let blas = Blas::new(gpu)?;
            let types = GemmTypes::of(dtype)?;
            let plan = |n: u64, k: u64| {
                MatmulPlan::new(gpu, &blas, GemmShape::single(batch, n, k, true), types)
            };
            let path = GemmPath {
                qkv: plan(qd + 2 * kvd, h)?,
                o: plan(h, qd)?,
                gate_up: plan(2 * inter, h)?,
                down: plan(h, inter)?,
                normed: act(h, "normed")?,
                qkv_out: act(qd + 2 * kvd, "qkv")?,
                o_out: act(h, "o")?,
                gate_up_out: act(2 * inter, "gate/up")?,
                down_out: act(h, "down")?,
                _blas: blas,
            };
            Some(path)
        } else {
            None
        };
        let mut d = Decode {
            gpu,
            side: gpu.ctx.new_stream().map_err(driver_error)?,
            capturing: Cell::new(false),
            shape,
            elem,
            batch,
            context,
            slots,
            layers: all,
            caches,
            input,
            y: [act(h, "y")?, act(h, "y")?],
            x2: act(h, "x2")?,
            q: act(qd, "q")?,
            attn: act(qd, "attention output")?,
            act: act(inter, "swiglu")?,
            partial: gpu.alloc(
                (pairs * splits * PARTIAL_FLOATS * 4) as usize,
                "attention partials",
            )?,
            counters: gpu.alloc((pairs * 4) as usize, "attention counters")?,
            splits,
            chunk,
            gemm,
            pdl: false,
            early_cache: false,
            graph: None,
            variants: Vec::new(),
            stages: Vec::new(),
            grid_caps: [u64::MAX; 5],
            depths: [4; 5],
            grid_tries: Vec::new(),
            failures: Vec::new(),
            read_bandwidth,
            step_bytes,
            weight_bytes: weight_bytes as f64,
            samples: Vec::new(),
        };
        gpu.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: the counters buffer holds `pairs` u32; the kernel expects them zero.
        unsafe {
            result::memset_d8_async(d.counters.ptr, 0, d.counters.bytes, gpu.stream.cu_stream())
        }
        .map_err(driver_error)?;
        if let Some(g) = d.gemm.as_mut() {
            let w = &d.layers[0];
            g.qkv
                .autotune(gpu, g.normed.ptr, w.qkv.ptr, g.qkv_out.ptr)?;
            g.o.autotune(gpu, d.attn.ptr, w.o.ptr, g.o_out.ptr)?;
            g.gate_up
                .autotune(gpu, g.normed.ptr, w.gate_up.ptr, g.gate_up_out.ptr)?;
            g.down
                .autotune(gpu, d.act.ptr, w.down.ptr, g.down_out.ptr)?;
        }
        d.choose_launch()?;
        Ok(d)
    }

    /// Times the step as plain launches and as CUDA graphs (with and without programmatic
    /// dependent launch where the GEMVs run), keeps the fastest graph, and times each stage
    /// alone (a graph of that stage for every layer) for the record.
    fn choose_launch(&mut self) -> Result<(), KernelError> {
        const REPS: u32 = 20;
        self.pdl = false;
        self.run_once(None)?;
        let eager = median(&self.gpu.time(REPS, 1, || self.run_once(None))?);
        self.variants.push(("launches".into(), eager));
        if self.gemm.is_none() {
            self.tune_grids()?;
        }
        let mut best: Option<((bool, bool), CudaGraph, f64)> = None;
        // (programmatic dependent launch, attention's early cache tile): for the GEMV path,
        // each kept only if it pays. (An L2 prefetch of the output projection's weights while
        // attention runs was tried here too and never paid: docs/PERFORMANCE.md.)
        let options: &[(bool, bool)] = if self.gemm.is_some() {
            &[(false, false)]
        } else if self.context == 0 {
            // No attention to start early.
            &[(false, false), (true, false)]
        } else {
            &[(false, false), (true, false), (true, true)]
        };
        for &(pdl, early_cache) in options {
            self.pdl = pdl;
            self.early_cache = early_cache;
            let name = match (pdl, early_cache) {
                (false, _) => "graph",
                (true, false) => "graph + programmatic dependent launch",
                (true, true) => {
                    "graph + programmatic dependent launch + attention's first cache tile before its wait"
                }
            };
            // A driver that cannot capture a variant leaves it out (recorded), not the run.
            let graph = match self.capture(None) {
                Ok(g) => g,
                Err(e) => {
                    self.failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            self.replay(&graph)?;
            let t = median(&self.gpu.time(REPS, 1, || self.replay(&graph))?);
            self.variants.push((name.into(), t));
            if best.as_ref().is_none_or(|b| t < b.2) {
                best = Some(((pdl, early_cache), graph, t));
            }
        }
        let Some(((pdl, early_cache), graph, _)) = best else {
            // No graph at all: plain launches, as timed above.
            self.pdl = false;
            self.early_cache = false;
            return Ok(());
        };
        self.pdl = pdl;
        self.early_cache = early_cache;
        for stage in STAGES {
            if stage == Stage::Attention && self.context == 0 {
                continue;
            }
            // For the record only: a stage that cannot be captured alone is left out.
            let Ok(g) = self.capture(Some(stage)) else {
                continue;
            };
            self.replay(&g)?;
            let t = median(&self.gpu.time(REPS, 1, || self.replay(&g))?);
            self.stages.push((stage, t));
        }
        self.graph = Some(graph);
        Ok(())
    }

    /// For each GEMV stage, times a graph of that stage over every layer at a few grid sizes
    /// (one block per tile, or a few blocks per SM looping over the tiles) and keeps the
    /// fastest. Tuned with programmatic dependent launch, falling back to without when that
    /// cannot be captured.
    fn tune_grids(&mut self) -> Result<(), KernelError> {
        const REPS: u32 = 10;
        let (h, qd, kvd, inter) = dims(&self.shape);
        let sms = u64::from(self.gpu.info.sm_count);
        self.pdl = true;
        if self.capture(Some(Stage::Output)).is_err() {
            self.pdl = false;
        }
        for (stage, rows) in [
            (Stage::Qkv, qd + 2 * kvd),
            (Stage::Output, h),
            (Stage::GateUp, 2 * inter),
            (Stage::Down, h),
        ] {
            let tiles = rows / TILE;
            let mut best = (f64::INFINITY, 4, tiles);
            // Grids of whole SM multiples, and grids that give every block the same number
            // of tiles: 384 QKV tiles on 264 blocks leave 120 blocks a second tile while 144
            // idle, a tail that balanced grids avoid.
            let balanced = (2..=4).map(|per_block| tiles.div_ceil(per_block));
            let caps: Vec<u64> = [tiles, 4 * sms, 3 * sms, 2 * sms, sms]
                .into_iter()
                .chain(balanced)
                .collect();
            for depth in DEPTHS {
                let mut tried = Vec::new();
                for &cap in &caps {
                    if cap > tiles || tried.contains(&cap) {
                        continue;
                    }
                    tried.push(cap);
                    self.grid_caps[stage as usize] = cap;
                    self.depths[stage as usize] = depth;
                    let g = match self.capture(Some(stage)) {
                        Ok(g) => g,
                        Err(e) => {
                            self.failures
                                .push(format!("{} U{depth}×{cap}: {e}", stage.name()));
                            continue;
                        }
                    };
                    self.replay(&g)?;
                    let t = median(&self.gpu.time(REPS, 1, || self.replay(&g))?);
                    self.grid_tries.push((stage, depth, cap, t));
                    if t < best.0 {
                        best = (t, depth, cap);
                    }
                }
            }
            self.depths[stage as usize] = best.1;
            self.grid_caps[stage as usize] = best.2;
        }
        self.pdl = false;
        Ok(())
    }

    fn capture(&self, only: Option<Stage>) -> Result<CudaGraph, KernelError> {
        self.gpu.synchronize()?;
        self.side
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(driver_error)?;
        self.capturing.set(true);
        let run = self.run_once(only);
        self.capturing.set(false);
        let graph = self
            .side
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .map_err(driver_error)?;
        run?;
        graph.ok_or_else(|| KernelError::Backend("CUDA graph capture recorded nothing".into()))
    }

    /// The stream work goes to: the capture stream while capturing, else the backend's.
    fn stream(&self) -> &Arc<CudaStream> {
        if self.capturing.get() {
            &self.side
        } else {
            &self.gpu.stream
        }
    }

    /// Launches `graph` on the backend's stream (after everything queued there).
    fn replay(&self, graph: &CudaGraph) -> Result<(), KernelError> {
        self.gpu.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: the executable graph is alive (owned by `graph`) and was captured from this
        // context's launches over buffers that outlive it.
        unsafe { sys::cuGraphLaunch(graph.cu_graph_exec(), self.gpu.stream.cu_stream()) }
            .result()
            .map_err(driver_error)
    }

    fn name(&self, kernel: &str) -> Result<String, KernelError> {
        Ok(format!("{kernel}_{}", self.elem.half_suffix()?))
    }

    /// `cuLaunchKernelEx`, with the programmatic-stream-serialization attribute when `pdl`
    /// (the kernel may start while the previous one finishes; it waits in `griddepcontrol`).
    fn launch(
        &self,
        kernel: &str,
        grid: (u32, u32, u32),
        block: u32,
        args: &[Arg],
        pdl: bool,
    ) -> Result<(), KernelError> {
        let f = self.gpu.function(&self.name(kernel)?)?;
        let mut values = args.to_vec();
        let mut ptrs: Vec<*mut c_void> = values
            .iter_mut()
            .map(|a| match a {
                Arg::Ptr(v) => v as *mut u64 as *mut c_void,
                Arg::U32(v) => v as *mut u32 as *mut c_void,
                Arg::F32(v) => v as *mut f32 as *mut c_void,
            })
            .collect();
        // SAFETY: a zeroed attribute is a valid plain-data value; the id and field set below.
        let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
        attr.id = CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attr.value.programmaticStreamSerializationAllowed = 1;
        let cfg = sys::CUlaunchConfig {
            gridDimX: grid.0,
            gridDimY: grid.1,
            gridDimZ: grid.2,
            blockDimX: block,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: 0,
            hStream: self.stream().cu_stream(),
            attrs: if pdl { &mut attr } else { std::ptr::null_mut() },
            numAttrs: u32::from(pdl),
        };
        self.gpu.ctx.bind_to_thread().map_err(driver_error)?;
        // SAFETY: `ptrs` points at one value per kernel parameter, in order and of the types
        // decode.cu declares; every pointer argument addresses an allocation sized for it.
        unsafe {
            sys::cuLaunchKernelEx(
                &cfg,
                f.cu_function(),
                ptrs.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        }
        .result()
        .map_err(driver_error)
    }

    fn layer_input(&self, layer: usize) -> u64 {
        if layer == 0 {
            self.input.ptr
        } else {
            self.y[(layer - 1) % 2].ptr
        }
    }

    /// The query and its row stride: the GEMM path leaves it in the QKV GEMM's output.
    fn query(&self) -> (u64, u64) {
        let (_, qd, kvd, _) = dims(&self.shape);
        match &self.gemm {
            Some(g) => (g.qkv_out.ptr, qd + 2 * kvd),
            None => (self.q.ptr, qd),
        }
    }

    fn run_once(&self, only: Option<Stage>) -> Result<(), KernelError> {
        for l in 0..self.layers.len() {
            for stage in STAGES {
                if only.is_none_or(|s| s == stage) {
                    self.stage(l, stage)?;
                }
            }
        }
        Ok(())
    }

    fn stage(&self, layer: usize, stage: Stage) -> Result<(), KernelError> {
        let (h, qd, kvd, inter) = dims(&self.shape);
        let w = &self.layers[layer];
        let [kc, vc] = &self.caches[layer];
        let x = self.layer_input(layer);
        let y = self.y[layer % 2].ptr;
        let b = self.batch as u32;
        let pos = (self.slots - 1) as u32;
        let st = self.stream().cu_stream() as cudarc::cublaslt::sys::cudaStream_t;
        let gemv = |kernel: &str, rows: u64, args: &[Arg]| {
            let blocks = (rows / TILE).min(self.grid_caps[stage as usize]);
            let name = format!("{kernel}{}", self.depths[stage as usize]);
            self.launch(&name, (blocks as u32, 1, 1), GEMV_THREADS, args, self.pdl)
        };
        let attn_in = if self.context == 0 {
            // No KV cache: the token's own query passes to the output projection.
            self.query()
        } else {
            (self.attn.ptr, qd)
        };
        match (&self.gemm, stage) {
            (None, Stage::Qkv) => gemv(
                "decode_qkv",
                qd + 2 * kvd,
                &[
                    Arg::Ptr(w.qkv.ptr),
                    Arg::Ptr(x),
                    Arg::U32(h as u32),
                    Arg::U32(b),
                    Arg::F32(EPS),
                    Arg::Ptr(self.q.ptr),
                    Arg::Ptr(kc.ptr),
                    Arg::Ptr(vc.ptr),
                    Arg::U32(qd as u32),
                    Arg::U32(kvd as u32),
                    Arg::U32(self.shape.head_dim as u32),
                    Arg::U32(self.slots as u32),
                    Arg::U32(pos),
                ],
            ),
            (_, Stage::Attention) => {
                if self.context == 0 {
                    return Ok(());
                }
                let (q, stride) = self.query();
                let scale_log2 = std::f32::consts::LOG2_E / (self.shape.head_dim as f32).sqrt();
                self.launch(
                    if self.early_cache {
                        "decode_attention_early"
                    } else {
                        "decode_attention"
                    },
                    (self.splits as u32, self.shape.kv_heads as u32, b),
                    ATT_THREADS,
                    &[
                        Arg::Ptr(q),
                        Arg::U32(stride as u32),
                        Arg::Ptr(kc.ptr),
                        Arg::Ptr(vc.ptr),
                        Arg::Ptr(self.attn.ptr),
                        Arg::Ptr(self.partial.ptr),
                        Arg::Ptr(self.counters.ptr),
                        Arg::U32(self.context as u32),
                        Arg::U32(self.chunk as u32),
                        Arg::F32(scale_log2),
                    ],
                    self.pdl,
                )
            }
            (None, Stage::Output) => {
                if attn_in.1 != qd {
                    return Err(KernelError::Backend("query stride mismatch".into()));
                }
                gemv(
                    "decode_residual",
                    h,
                    &[
                        Arg::Ptr(w.o.ptr),
                        Arg::Ptr(attn_in.0),
                        Arg::U32(qd as u32),
                        Arg::U32(b),
                        Arg::Ptr(x),
                        Arg::Ptr(self.x2.ptr),
                        Arg::U32(h as u32),
                    ],
                )
            }
            (None, Stage::GateUp) => gemv(
                "decode_swiglu",
                2 * inter,
                &[
                    Arg::Ptr(w.gate_up.ptr),
                    Arg::Ptr(self.x2.ptr),
                    Arg::U32(h as u32),
                    Arg::U32(b),
                    Arg::F32(EPS),
                    Arg::Ptr(self.act.ptr),
                    Arg::U32(inter as u32),
                ],
            ),
            (None, Stage::Down) => gemv(
                "decode_residual",
                h,
                &[
                    Arg::Ptr(w.down.ptr),
                    Arg::Ptr(self.act.ptr),
                    Arg::U32(inter as u32),
                    Arg::U32(b),
                    Arg::Ptr(self.x2.ptr),
                    Arg::Ptr(y),
                    Arg::U32(h as u32),
                ],
            ),
            (Some(g), Stage::Qkv) => {
                self.rms_norm(x, g.normed.ptr)?;
                g.qkv.run_on(st, g.normed.ptr, w.qkv.ptr, g.qkv_out.ptr)?;
                self.launch(
                    "decode_kv_append",
                    (self.gpu.info.sm_count * 4, 1, 1),
                    256,
                    &[
                        Arg::Ptr(g.qkv_out.ptr),
                        Arg::Ptr(kc.ptr),
                        Arg::Ptr(vc.ptr),
                        Arg::U32(b),
                        Arg::U32(qd as u32),
                        Arg::U32(kvd as u32),
                        Arg::U32(self.shape.head_dim as u32),
                        Arg::U32(self.slots as u32),
                        Arg::U32(pos),
                    ],
                    false,
                )
            }
            (Some(g), Stage::Output) => {
                if self.context == 0 {
                    // The query rows of the QKV output, strided: copy them out first.
                    self.copy_rows(g.qkv_out.ptr, qd + 2 * kvd, self.attn.ptr, qd)?;
                }
                g.o.run_on(st, self.attn.ptr, w.o.ptr, g.o_out.ptr)?;
                self.elementwise("add", x, g.o_out.ptr, self.x2.ptr, self.batch * h)
            }
            (Some(g), Stage::GateUp) => {
                self.rms_norm(self.x2.ptr, g.normed.ptr)?;
                g.gate_up
                    .run_on(st, g.normed.ptr, w.gate_up.ptr, g.gate_up_out.ptr)?;
                self.launch(
                    "decode_swiglu_tiles",
                    (self.gpu.info.sm_count * 4, 1, 1),
                    256,
                    &[
                        Arg::Ptr(g.gate_up_out.ptr),
                        Arg::Ptr(self.act.ptr),
                        Arg::U32(b),
                        Arg::U32(inter as u32),
                    ],
                    false,
                )
            }
            (Some(g), Stage::Down) => {
                g.down
                    .run_on(st, self.act.ptr, w.down.ptr, g.down_out.ptr)?;
                self.elementwise("add", self.x2.ptr, g.down_out.ptr, y, self.batch * h)
            }
        }
    }

    fn copy_rows(
        &self,
        src: u64,
        src_stride: u64,
        dst: u64,
        width: u64,
    ) -> Result<(), KernelError> {
        let es = self.elem.size_bytes() as u64;
        for t in 0..self.batch {
            // SAFETY: both buffers hold `batch` rows of at least `width` elements.
            unsafe {
                result::memcpy_dtod_async(
                    dst + t * width * es,
                    src + t * src_stride * es,
                    (width * es) as usize,
                    self.stream().cu_stream(),
                )
            }
            .map_err(driver_error)?;
        }
        Ok(())
    }

    fn elementwise(&self, name: &str, a: u64, b: u64, out: u64, n: u64) -> Result<(), KernelError> {
        let f = self.gpu.function(&self.name(name)?)?;
        let mut launch = self.stream().launch_builder(f);
        launch.arg(&a).arg(&b).arg(&out).arg(&n);
        // SAFETY: (a, b, out, n) over n 16-bit elements, as in layer.cu.
        unsafe { launch.launch(self.gpu.persistent_grid(4, 256)) }.map_err(driver_error)?;
        Ok(())
    }

    fn rms_norm(&self, x: u64, y: u64) -> Result<(), KernelError> {
        let f = self.gpu.function(&self.name("rms_norm")?)?;
        let width = self.shape.hidden as u32;
        let cfg = LaunchConfig {
            grid_dim: (self.batch as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream().launch_builder(f);
        launch.arg(&x).arg(&y).arg(&width).arg(&EPS);
        // SAFETY: one block per row of `width` elements.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }

    /// Fills the newest slot (`slots - 1`) of every sequence's keys and values in every layer
    /// with a constant (7.0 in f16, 32768 in bf16) that no step writes there.
    fn poison_newest_rows(&self) -> Result<(), KernelError> {
        let es = self.elem.size_bytes() as u64;
        let hd = self.shape.head_dim;
        let rows = self.batch * self.shape.kv_heads;
        self.gpu.ctx.bind_to_thread().map_err(driver_error)?;
        for cache in self.caches.iter().flatten() {
            // SAFETY: `rows` runs of `hd` elements, `slots·hd` elements apart, starting at slot
            // `slots - 1` of the first sequence: all inside the cache allocation.
            unsafe {
                sys::cuMemsetD2D16Async(
                    cache.ptr + (self.slots - 1) * hd * es,
                    (self.slots * hd * es) as usize,
                    0x4700,
                    hd as usize,
                    rows as usize,
                    self.gpu.stream.cu_stream(),
                )
            }
            .result()
            .map_err(driver_error)?;
        }
        Ok(())
    }

    fn step(&self) -> Result<(), KernelError> {
        match &self.graph {
            Some(g) => self.replay(g),
            None => self.run_once(None),
        }
    }
}

/// The GPU's read bandwidth in bytes/s: the `bandwidth` kernel's read, launched and verified as
/// `silirep measure --kernels bandwidth_read` runs it, over a fresh buffer of
/// [`READ_REFERENCE_BYTES`]; median of 30 passes after 5 untimed.
fn measure_read_bandwidth(gpu: &Gpu, seed: u64) -> Result<f64, KernelError> {
    let mut read = Bandwidth::prepare(gpu, BandwidthOp::Read, READ_REFERENCE_BYTES, seed ^ 0x77)?;
    let check = read.verify()?;
    if check.status != VerificationStatus::Passed {
        return Err(KernelError::Backend(format!(
            "the read-bandwidth reference failed its own check ({})",
            check.method
        )));
    }
    read.time(5)?;
    Ok(READ_REFERENCE_BYTES as f64 / median(&read.time(30)?))
}

impl PreparedKernel for Decode<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let samples = self.gpu.time(iterations, 1, || self.step())?;
        self.samples.extend_from_slice(&samples);
        Ok(samples)
    }

    /// MBU is computed from the timed samples only, the ones the result file keeps: the
    /// warm-up's are dropped here.
    fn begin_timing(&mut self) {
        self.samples.clear();
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        // Every step writes the same bits into the newest cache row, so an attention kernel
        // that read it before this step's QKV kernel wrote it would still match: overwrite it
        // first, so that such a read shows as a wrong attention output below.
        self.poison_newest_rows()?;
        self.step()?;
        self.gpu.synchronize()?;
        let gpu = self.gpu;
        let elem = self.elem;
        let (h, qd, kvd, inter) = dims(&self.shape);
        let hd = self.shape.head_dim;
        let last = self.layers.len() - 1;
        let w = &self.layers[last];
        let [kc, vc] = &self.caches[last];
        let x = self.layer_input(last);
        let y = self.y[last % 2].ptr;
        let row = |buf: u64, width: u64, index: u64| -> Result<Vec<f64>, KernelError> {
            gpu.download(buf, elem, (index * width) as usize, width as usize)
        };
        let one = |buf: u64, index: u64| -> Result<f64, KernelError> {
            Ok(gpu.download(buf, elem, index as usize, 1)?[0])
        };
        // Row `r` of a `[rows×k]` weight matrix: the GEMV path stores tiles (`tiled_offset`),
        // so the row is gathered from its tile's block; cuBLASLt's path stores rows.
        let tiled = self.gemm.is_none();
        let wrow = |buf: u64, k: u64, r: u64| -> Result<Vec<f64>, KernelError> {
            if !tiled {
                return row(buf, k, r);
            }
            let base = (r / TILE) * TILE * k;
            let block = gpu.download(buf, elem, base as usize, (TILE * k) as usize)?;
            Ok((0..k)
                .map(|c| block[tiled_offset(r % TILE, c, k) as usize])
                .collect())
        };
        let rms = |v: &[f64]| silirep_core::reference::rms_norm_scale(v, EPS as f64);
        let cache_index = |t: u64, head: u64, slot: u64, d: u64| {
            ((t * self.shape.kv_heads + head) * self.slots + slot) * hd + d
        };
        let (q, q_stride) = self.query();
        let mut rng = Rng::new(0xdec0de);
        let (mut actual, mut expected) = (Vec::new(), Vec::new());
        let tokens = self.batch;
        // QKV: the query, and the new key and value in the cache's last slot.
        for _ in 0..24 {
            let t = rng.index(tokens as usize) as u64;
            let r = rng.index((qd + 2 * kvd) as usize) as u64;
            let xt = row(x, h, t)?;
            let e = rms(&xt) * dot(&xt, &wrow(w.qkv.ptr, h, r)?);
            let a = if r < qd {
                one(q, t * q_stride + r)?
            } else {
                let (cache, rr) = if r < qd + kvd {
                    (kc.ptr, r - qd)
                } else {
                    (vc.ptr, r - qd - kvd)
                };
                one(cache, cache_index(t, rr / hd, self.slots - 1, rr % hd))?
            };
            actual.push(a);
            expected.push(e);
        }
        // Attention over the whole cache, from the stored query, keys and values.
        let attn = if self.context == 0 {
            None
        } else {
            for _ in 0..3 {
                let t = rng.index(tokens as usize) as u64;
                let head = rng.index(self.shape.heads as usize) as u64;
                let g = head / ATT_GROUP;
                let qv = gpu.download(q, elem, (t * q_stride + head * hd) as usize, hd as usize)?;
                let base = cache_index(t, g, 0, 0) as usize;
                let n = (self.slots * hd) as usize;
                let split = |all: Vec<f64>| -> Vec<Vec<f64>> {
                    all.chunks(hd as usize).map(<[f64]>::to_vec).collect()
                };
                let keys = split(gpu.download(kc.ptr, elem, base, n)?);
                let values = split(gpu.download(vc.ptr, elem, base, n)?);
                let out = silirep_core::reference::attention(&qv, &keys, &values);
                let got = gpu.download(
                    self.attn.ptr,
                    elem,
                    (t * qd + head * hd) as usize,
                    hd as usize,
                )?;
                for e in 0..hd as usize {
                    actual.push(got[e]);
                    expected.push(out[e]);
                }
            }
            Some(self.attn.ptr)
        };
        // x2 = x + Wo·attn
        for _ in 0..16 {
            let t = rng.index(tokens as usize) as u64;
            let r = rng.index(h as usize) as u64;
            let a = match attn {
                Some(p) => row(p, qd, t)?,
                None => gpu.download(q, elem, (t * q_stride) as usize, qd as usize)?,
            };
            expected.push(one(x, t * h + r)? + dot(&a, &wrow(w.o.ptr, qd, r)?));
            actual.push(one(self.x2.ptr, t * h + r)?);
        }
        // act = silu(rms(x2)·gate)·(rms(x2)·up)
        for _ in 0..16 {
            let t = rng.index(tokens as usize) as u64;
            let i = rng.index(inter as usize) as u64;
            let x2 = row(self.x2.ptr, h, t)?;
            let s = rms(&x2);
            let gate = s * dot(&x2, &wrow(w.gate_up.ptr, h, gate_up_row(i, false))?);
            let up = s * dot(&x2, &wrow(w.gate_up.ptr, h, gate_up_row(i, true))?);
            expected.push(silirep_core::reference::swiglu(gate, up));
            actual.push(one(self.act.ptr, t * inter + i)?);
        }
        // y = x2 + Wd·act
        for _ in 0..16 {
            let t = rng.index(tokens as usize) as u64;
            let r = rng.index(h as usize) as u64;
            let e = one(self.x2.ptr, t * h + r)?
                + dot(&row(self.act.ptr, inter, t)?, &wrow(w.down.ptr, inter, r)?);
            expected.push(e);
            actual.push(one(y, t * h + r)?);
        }
        Ok(compare_outputs(
            &actual,
            &expected,
            // Each stage rounds its output to 16 bits; f32 accumulation inside.
            4.0 * elem.unit_roundoff(),
            "every stage of the last layer on sampled entries (QKV with the folded RMSNorm, the new key and value in the cache, attention over the whole KV cache, output projection + residual, SwiGLU, down projection + residual) vs f64 from the stage's stored inputs",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let ms = |s: f64| format!("{:.4} ms", s * 1e3);
        let mut d = BTreeMap::from([
            ("layers".into(), self.layers.len().to_string()),
            (
                "weights".into(),
                format!(
                    "random ±(power of two ≤ 1/√fan-in), [out×in] {}; q/k/v fused into one matrix, gate/up interleaved in 16-row tiles",
                    if self.gemm.is_none() {
                        "stored in 16-row tiles so each warp load is 512 contiguous bytes (tiled_offset)"
                    } else {
                        "stored row-major"
                    }
                ),
            ),
            (
                "rotary_embedding".into(),
                "not applied (no FLOP- or traffic-relevant effect)".into(),
            ),
            (
                "launch".into(),
                format!(
                    "{}{}; prepare timed (median of 20): {}{}",
                    if self.graph.is_some() {
                        "one CUDA graph per step"
                    } else {
                        "plain launches (no graph could be captured)"
                    },
                    match (self.pdl, self.early_cache) {
                        (false, _) => "",
                        (true, false) => ", kernels with programmatic dependent launch",
                        (true, true) => {
                            ", kernels with programmatic dependent launch, attention's first cache tile requested before its wait"
                        }
                    },
                    self.variants
                        .iter()
                        .map(|(n, t)| format!("{n} {}", ms(*t)))
                        .collect::<Vec<_>>()
                        .join("; "),
                    if self.failures.is_empty() {
                        String::new()
                    } else {
                        format!("; not captured: {}", self.failures.join("; "))
                    }
                ),
            ),
            (
                "stage_times".into(),
                format!(
                    "each stage alone over every layer, per layer (median of 20 graph launches): {}",
                    self.stages
                        .iter()
                        .map(|(s, t)| format!(
                            "{} {:.2} µs",
                            s.name(),
                            t * 1e6 / self.layers.len() as f64
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (
                "gemv_grids".into(),
                if self.grid_tries.is_empty() {
                    "one block per 16-row tile".into()
                } else {
                    format!(
                        "chunk depth × blocks per GEMV stage, chosen (*) by timing each stage alone over every layer (µs per layer): {}",
                        self.grid_tries
                            .iter()
                            .map(|(s, u, b, t)| format!(
                                "{} U{u}×{b}{} {:.2}",
                                s.name(),
                                if self.grid_caps[*s as usize] == *b
                                    && self.depths[*s as usize] == *u
                                {
                                    "*"
                                } else {
                                    ""
                                },
                                t * 1e6 / self.layers.len() as f64
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            ),
            (
                "read_bandwidth".into(),
                format!(
                    "{:.1} GB/s: bandwidth_read over {} GiB, median of 30, measured in prepare",
                    self.read_bandwidth / 1e9,
                    READ_REFERENCE_BYTES >> 30
                ),
            ),
        ]);
        d.insert(
            "projections".into(),
            match &self.gemm {
                None => "tensor-core GEMV kernels (decode.cu): RMSNorm folded into QKV and gate/up, SwiGLU and residuals in the epilogues, new K/V written into the cache by the QKV kernel".into(),
                Some(g) => format!(
                    "cuBLASLt over the fused weights; qkv: {}; down: {}",
                    g.qkv.describe(),
                    g.down.describe()
                ),
            },
        );
        d.insert(
            "attention".into(),
            if self.context == 0 {
                "none: no KV cache, the query passes to the output projection".into()
            } else {
                format!(
                    "flash-decoding over a KV cache of {} positions per sequence ({} split(s) of {} positions per (sequence, KV head)), grouped KV heads",
                    self.context, self.splits, self.chunk,
                )
            },
        );
        if !self.samples.is_empty() {
            let t = median(&self.samples);
            if let Some(bytes) = self.step_bytes {
                d.insert(
                    "mbu".into(),
                    format!(
                        "{:.1}%: bytes per step by the decode formula ({:.4} GB) / median step time ({}) / read bandwidth ({:.1} GB/s); weights alone {:.1}%",
                        100.0 * bytes / t / self.read_bandwidth,
                        bytes / 1e9,
                        ms(t),
                        self.read_bandwidth / 1e9,
                        100.0 * self.weight_bytes / t / self.read_bandwidth
                    ),
                );
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_up_rows_interleave_in_tiles_of_sixteen() {
        assert_eq!(gate_up_row(0, false), 0);
        assert_eq!(gate_up_row(7, false), 7);
        assert_eq!(gate_up_row(0, true), 8);
        assert_eq!(gate_up_row(8, false), 16);
        assert_eq!(gate_up_row(9, true), 25);
        // Every physical row of a 14336-wide intermediate used exactly once.
        let mut seen = vec![false; 2 * 14336];
        for i in 0..14336 {
            for up in [false, true] {
                let r = gate_up_row(i, up) as usize;
                assert!(!seen[r]);
                seen[r] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    /// The GEMV kernels' addressing, as decode.cu computes it: lane (g, t) of a warp, step
    /// `s` of tile `tile`, loads 8 elements from `wt + s·512` (rows 0–7) and `+ 256` (rows
    /// 8–15), `wt = w + tile·16·k + 8·lane`, and uses them as row g (or g + 8), columns
    /// 32s + 8t … 32s + 8t + 7.
    fn kernel_load(tile: u64, step: u64, lane: u64, high: bool, k: u64) -> u64 {
        tile * TILE * k + 8 * lane + step * 512 + if high { 256 } else { 0 }
    }

    #[test]
    fn tiled_layout_is_what_the_kernel_reads() {
        let (rows, k) = (48u64, 96u64);
        // A bijection onto the matrix's elements.
        let mut seen = vec![false; (rows * k) as usize];
        for r in 0..rows {
            for c in 0..k {
                let o = tiled_offset(r, c, k) as usize;
                assert!(!seen[o], "({r}, {c})");
                seen[o] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        // Every lane's 8 loaded elements are the row and columns the mma fragments take.
        for tile in 0..rows / TILE {
            for step in 0..k / 32 {
                for lane in 0..32 {
                    let (g, t) = (lane / 4, lane % 4);
                    for high in [false, true] {
                        let r = tile * TILE + g + if high { 8 } else { 0 };
                        for e in 0..8 {
                            let c = step * 32 + 8 * t + e;
                            assert_eq!(
                                kernel_load(tile, step, lane, high, k) + e,
                                tiled_offset(r, c, k)
                            );
                        }
                    }
                }
            }
        }
        // A warp's load is 512 contiguous bytes: lanes 16 bytes apart.
        assert_eq!(tiled_offset(0, 8, k) - tiled_offset(0, 0, k), 8);
        assert_eq!(tiled_offset(1, 0, k) - tiled_offset(0, 24, k), 8);
    }
}
