//! Backward pass of the Mistral-shaped layer in `layer.rs`: given the forward activations
//! (kept from one forward run in `prepare`) and an upstream gradient `dy`, the gradients of the
//! layer input and of all seven weight matrices. What is timed is the backward pass alone, as
//! in the CPU backend; FLOPs follow silirep-core's rule (two GEMMs per forward GEMM).
//!
//! Every projection contributes an input-gradient GEMM (`dY·W`) and a weight-gradient GEMM
//! (`dYᵀ·X`), both cuBLASLt; gradients that are sums of products (`dh1` from Q, K and V) are
//! accumulated by the GEMM itself (beta = 1). Attention backward is the unfused sequence: Q,
//! K, V and dO are rearranged to one contiguous matrix per query head (grouped K and V are
//! expanded), `P = softmax(Q·Kᵀ/√d)` is recomputed (the fused forward keeps no probabilities),
//! then `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`, `dQ = dS·K/√d`,
//! `dK = dSᵀ·Q/√d` as batched GEMMs, and K and V gradients are summed back over each group.
//!
//! Verification is stage by stage, as for the forward: sampled entries of every stage's output
//! against an f64 recomputation from that stage's inputs as stored on the device. Each stage's
//! errors are measured relative to the largest sampled reference value of that stage, so small
//! gradients are checked as strictly as large ones.

use crate::device::{Buffer, Gpu, driver_error};
use crate::gemm::{Blas, GemmShape, GemmTypes, MatmulPlan};
use crate::host::{ElemType, Rng, dot};
use crate::layer::{EPS, LayerForward, dims};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, LayerShape, PreparedKernel};
use std::collections::BTreeMap;

/// Widest row the row kernels hold in registers (layer_backward.cu: 8 values × 4 chunks × 256
/// threads).
const MAX_ROW: u64 = 8 * 4 * 256;

/// Gradient buffers, `[tokens × width]` unless noted.
struct Grads {
    dy: Buffer,
    d_act: Buffer,
    d_gate: Buffer,
    d_up: Buffer,
    d_h2: Buffer,
    d_x2: Buffer,
    d_attn: Buffer,
    d_q: Buffer,
    d_k: Buffer,
    d_v: Buffer,
    d_h1: Buffer,
    d_x: Buffer,
    /// Weight gradients, each shaped like its weight.
    w_down: Buffer,
    w_gate: Buffer,
    w_up: Buffer,
    w_o: Buffer,
    w_q: Buffer,
    w_k: Buffer,
    w_v: Buffer,
}

/// Attention-backward work buffers: `[heads × tokens × head_dim]` per-head matrices and
/// `[heads × tokens × tokens]` score-shaped ones.
struct HeadBuffers {
    q: Buffer,
    k: Buffer,
    v: Buffer,
    d_out: Buffer,
    p: Buffer,
    d_p: Buffer,
    d_s: Buffer,
    d_q: Buffer,
    d_k: Buffer,
    d_v: Buffer,
}

struct Plans {
    /// Input gradients `dY[t×out]·W[out×in]`.
    in_down: MatmulPlan,
    in_gate_up: MatmulPlan,
    in_o: MatmulPlan,
    in_q: MatmulPlan,
    in_kv: MatmulPlan,
    /// Weight gradients `dY[t×out]ᵀ·X[t×in]`.
    w_down: MatmulPlan,
    w_gate_up: MatmulPlan,
    w_o: MatmulPlan,
    w_q: MatmulPlan,
    w_kv: MatmulPlan,
    /// Attention, batched over heads.
    scores: MatmulPlan,
    d_v: MatmulPlan,
    d_p: MatmulPlan,
    d_q: MatmulPlan,
    d_k: MatmulPlan,
}

pub struct LayerBackward<'a> {
    forward: LayerForward<'a>,
    _blas: Blas,
    grads: Grads,
    heads: HeadBuffers,
    plans: Plans,
    group: u32,
}

impl<'a> LayerBackward<'a> {
    pub fn prepare(
        gpu: &'a Gpu,
        shape: LayerShape,
        batch: u64,
        seq: u64,
        dtype: Dtype,
        seed: u64,
    ) -> Result<LayerBackward<'a>, KernelError> {
        if batch != 1 {
            return Err(KernelError::Unsupported(
                "the CUDA layer backward runs batch 1 (attention spans all tokens)".into(),
            ));
        }
        let (h, qd, kvd, inter) = dims(&shape);
        if h > MAX_ROW || seq > MAX_ROW || !seq.is_multiple_of(8) {
            return Err(KernelError::Unsupported(format!(
                "the backward row kernels need hidden and seq_len ≤ {MAX_ROW}, seq_len a multiple of 8"
            )));
        }
        let forward = LayerForward::prepare(gpu, shape, batch, seq, dtype, seed)?;
        // The forward whose activations the backward reads; never rerun while timing.
        forward.run_once()?;
        let elem = forward.elem;
        let es = elem.size_bytes() as u64;
        let t = seq;
        let (heads, d) = (shape.heads, shape.head_dim);
        let alloc = |elements: u64, what: &str| gpu.alloc((elements * es) as usize, what);
        let grads = Grads {
            dy: alloc(t * h, "dy")?,
            d_act: alloc(t * inter, "d_act")?,
            d_gate: alloc(t * inter, "d_gate")?,
            d_up: alloc(t * inter, "d_up")?,
            d_h2: alloc(t * h, "d_h2")?,
            d_x2: alloc(t * h, "d_x2")?,
            d_attn: alloc(t * qd, "d_attn")?,
            d_q: alloc(t * qd, "d_q")?,
            d_k: alloc(t * kvd, "d_k")?,
            d_v: alloc(t * kvd, "d_v")?,
            d_h1: alloc(t * h, "d_h1")?,
            d_x: alloc(t * h, "d_x")?,
            w_down: alloc(h * inter, "down weight gradient")?,
            w_gate: alloc(inter * h, "gate weight gradient")?,
            w_up: alloc(inter * h, "up weight gradient")?,
            w_o: alloc(h * qd, "o weight gradient")?,
            w_q: alloc(qd * h, "q weight gradient")?,
            w_k: alloc(kvd * h, "k weight gradient")?,
            w_v: alloc(kvd * h, "v weight gradient")?,
        };
        gpu.fill(grads.dy.ptr, (t * h) as usize, elem, 1.0, seed ^ 0xd1)?;
        let per_head = heads * t * d;
        let scores = heads * t * t;
        let hb = HeadBuffers {
            q: alloc(per_head, "per-head q")?,
            k: alloc(per_head, "per-head k")?,
            v: alloc(per_head, "per-head v")?,
            d_out: alloc(per_head, "per-head dO")?,
            p: alloc(scores, "probabilities")?,
            d_p: alloc(scores, "dP")?,
            d_s: alloc(scores, "dS")?,
            d_q: alloc(per_head, "per-head dQ")?,
            d_k: alloc(per_head, "per-head dK")?,
            d_v: alloc(per_head, "per-head dV")?,
        };
        let blas = Blas::new(gpu)?;
        let types = GemmTypes::of(dtype)?;
        let plan = |shape: GemmShape| MatmulPlan::new(gpu, &blas, shape, types);
        let input_grad = |input: u64, output: u64| plan(GemmShape::single(t, input, output, false));
        let weight_grad = |output: u64, input: u64| {
            plan(GemmShape {
                a_transposed: true,
                ..GemmShape::single(output, input, t, false)
            })
        };
        let scale = 1.0 / (d as f32).sqrt();
        let batched = |m: u64, n: u64, k: u64, a_t: bool, b_t: bool, strides, alpha| {
            plan(GemmShape {
                a_transposed: a_t,
                batch: heads,
                strides,
                alpha,
                ..GemmShape::single(m, n, k, b_t)
            })
        };
        let (td, tt) = (t * d, t * t);
        let mut plans = Plans {
            in_down: input_grad(inter, h)?,
            in_gate_up: input_grad(h, inter)?,
            in_o: input_grad(qd, h)?,
            in_q: input_grad(h, qd)?,
            in_kv: input_grad(h, kvd)?,
            w_down: weight_grad(h, inter)?,
            w_gate_up: weight_grad(inter, h)?,
            w_o: weight_grad(h, qd)?,
            w_q: weight_grad(qd, h)?,
            w_kv: weight_grad(kvd, h)?,
            scores: batched(t, t, d, false, true, (td, td, tt), scale)?,
            d_v: batched(t, d, t, true, false, (tt, td, td), 1.0)?,
            d_p: batched(t, t, d, false, true, (td, td, tt), 1.0)?,
            d_q: batched(t, d, t, false, false, (tt, td, td), scale)?,
            d_k: batched(t, d, t, true, false, (tt, td, td), scale)?,
        };
        let (a, w, g) = (&forward.acts, &forward.weights, &grads);
        plans
            .in_down
            .autotune(gpu, g.dy.ptr, w.down.ptr, g.d_act.ptr)?;
        plans
            .in_gate_up
            .autotune(gpu, g.d_gate.ptr, w.gate.ptr, g.d_h2.ptr)?;
        plans
            .in_o
            .autotune(gpu, g.d_x2.ptr, w.o.ptr, g.d_attn.ptr)?;
        plans.in_q.autotune(gpu, g.d_q.ptr, w.q.ptr, g.d_h1.ptr)?;
        plans.in_kv.autotune(gpu, g.d_k.ptr, w.k.ptr, g.d_h1.ptr)?;
        plans
            .w_down
            .autotune(gpu, g.dy.ptr, a.act.ptr, g.w_down.ptr)?;
        plans
            .w_gate_up
            .autotune(gpu, g.d_gate.ptr, a.h2.ptr, g.w_gate.ptr)?;
        plans.w_o.autotune(gpu, g.d_x2.ptr, a.attn.ptr, g.w_o.ptr)?;
        plans.w_q.autotune(gpu, g.d_q.ptr, a.h1.ptr, g.w_q.ptr)?;
        plans.w_kv.autotune(gpu, g.d_k.ptr, a.h1.ptr, g.w_k.ptr)?;
        plans.scores.autotune(gpu, hb.q.ptr, hb.k.ptr, hb.p.ptr)?;
        plans
            .d_v
            .autotune(gpu, hb.p.ptr, hb.d_out.ptr, hb.d_v.ptr)?;
        plans
            .d_p
            .autotune(gpu, hb.d_out.ptr, hb.v.ptr, hb.d_p.ptr)?;
        plans.d_q.autotune(gpu, hb.d_s.ptr, hb.k.ptr, hb.d_q.ptr)?;
        plans.d_k.autotune(gpu, hb.d_s.ptr, hb.q.ptr, hb.d_k.ptr)?;
        let mut kernel = LayerBackward {
            forward,
            _blas: blas,
            grads,
            heads: hb,
            plans,
            group: 1,
        };
        kernel.group = gpu.group_for(|| kernel.run_once())?;
        Ok(kernel)
    }

    fn gpu(&self) -> &'a Gpu {
        self.forward.gpu
    }

    fn tokens(&self) -> u64 {
        self.forward.seq
    }

    fn kernel(&self, name: &str) -> Result<&'a cudarc::driver::CudaFunction, KernelError> {
        self.gpu()
            .function(&format!("{name}_{}", self.forward.elem.half_suffix()?))
    }

    /// `out = residual + RMSNorm backward(x, dh)`, one block per row of `hidden`.
    fn rms_norm_backward(
        &self,
        x: u64,
        dh: u64,
        residual: u64,
        out: u64,
    ) -> Result<(), KernelError> {
        let width = self.forward.shape.hidden as u32;
        let cfg = LaunchConfig {
            grid_dim: (self.tokens() as u32, 1, 1),
            block_dim: (row_threads(width), 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self
            .gpu()
            .stream
            .launch_builder(self.kernel("rms_norm_backward")?);
        launch
            .arg(&x)
            .arg(&dh)
            .arg(&residual)
            .arg(&out)
            .arg(&width)
            .arg(&EPS);
        // SAFETY: one block per row of `width` elements of each buffer.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }

    fn to_heads(&self, src: u64, dst: u64, src_heads: u64) -> Result<(), KernelError> {
        let s = &self.forward.shape;
        let (t, heads, src_heads, d) = (
            self.tokens() as u32,
            s.heads as u32,
            src_heads as u32,
            s.head_dim as u32,
        );
        let mut launch = self
            .gpu()
            .stream
            .launch_builder(self.gpu().function("to_heads")?);
        launch
            .arg(&src)
            .arg(&dst)
            .arg(&t)
            .arg(&heads)
            .arg(&src_heads)
            .arg(&d);
        // SAFETY: src holds tokens × src_heads·d elements, dst heads × tokens × d.
        unsafe { launch.launch(self.gpu().persistent_grid(4, 256)) }.map_err(driver_error)?;
        Ok(())
    }

    fn merge_heads(&self, src: u64, dst: u64, dst_heads: u64) -> Result<(), KernelError> {
        let s = &self.forward.shape;
        let (t, heads, dst_heads, d) = (
            self.tokens() as u32,
            s.heads as u32,
            dst_heads as u32,
            s.head_dim as u32,
        );
        let mut launch = self
            .gpu()
            .stream
            .launch_builder(self.kernel("from_heads_sum")?);
        launch
            .arg(&src)
            .arg(&dst)
            .arg(&t)
            .arg(&heads)
            .arg(&dst_heads)
            .arg(&d);
        // SAFETY: src holds heads × tokens × d elements, dst tokens × dst_heads·d.
        unsafe { launch.launch(self.gpu().persistent_grid(4, 256)) }.map_err(driver_error)?;
        Ok(())
    }

    fn attention_backward(&self) -> Result<(), KernelError> {
        let (a, g, hb, p) = (&self.forward.acts, &self.grads, &self.heads, &self.plans);
        let s = &self.forward.shape;
        let gpu = self.gpu();
        self.to_heads(a.q.ptr, hb.q.ptr, s.heads)?;
        self.to_heads(a.k.ptr, hb.k.ptr, s.kv_heads)?;
        self.to_heads(a.v.ptr, hb.v.ptr, s.kv_heads)?;
        self.to_heads(g.d_attn.ptr, hb.d_out.ptr, s.heads)?;
        p.scores.run(hb.q.ptr, hb.k.ptr, hb.p.ptr)?;
        let cols = self.tokens() as u32;
        let rows = LaunchConfig {
            grid_dim: ((s.heads * self.tokens()) as u32, 1, 1),
            block_dim: (row_threads(cols), 1, 1),
            shared_mem_bytes: 0,
        };
        // The naive attention's softmax (attention.cu), sized the way attention.rs sizes it.
        let softmax_cfg = LaunchConfig {
            block_dim: (cols.div_ceil(32).div_ceil(32).clamp(1, 8) * 32, 1, 1),
            ..rows
        };
        let mut launch = gpu.stream.launch_builder(self.kernel("softmax_rows")?);
        // The layer's attention is non-causal.
        let causal = 0u32;
        launch.arg(&hb.p.ptr).arg(&cols).arg(&causal);
        // SAFETY: one block per row of the [heads·tokens × tokens] score matrix.
        unsafe { launch.launch(softmax_cfg) }.map_err(driver_error)?;
        p.d_v.run(hb.p.ptr, hb.d_out.ptr, hb.d_v.ptr)?;
        p.d_p.run(hb.d_out.ptr, hb.v.ptr, hb.d_p.ptr)?;
        let mut launch = gpu.stream.launch_builder(self.kernel("softmax_backward")?);
        launch
            .arg(&hb.p.ptr)
            .arg(&hb.d_p.ptr)
            .arg(&hb.d_s.ptr)
            .arg(&cols);
        // SAFETY: as above, three score-shaped buffers.
        unsafe { launch.launch(rows) }.map_err(driver_error)?;
        p.d_q.run(hb.d_s.ptr, hb.k.ptr, hb.d_q.ptr)?;
        p.d_k.run(hb.d_s.ptr, hb.q.ptr, hb.d_k.ptr)?;
        self.merge_heads(hb.d_q.ptr, g.d_q.ptr, s.heads)?;
        self.merge_heads(hb.d_k.ptr, g.d_k.ptr, s.kv_heads)?;
        self.merge_heads(hb.d_v.ptr, g.d_v.ptr, s.kv_heads)
    }

    fn run_once(&self) -> Result<(), KernelError> {
        let (a, w, g, p) = (
            &self.forward.acts,
            &self.forward.weights,
            &self.grads,
            &self.plans,
        );
        let x = a.input.ptr;
        let n_inter = self.tokens() * self.forward.shape.intermediate;
        // y = x2 + act·Wdᵀ
        p.in_down.run(g.dy.ptr, w.down.ptr, g.d_act.ptr)?;
        p.w_down.run(g.dy.ptr, a.act.ptr, g.w_down.ptr)?;
        let mut launch = self
            .gpu()
            .stream
            .launch_builder(self.kernel("swiglu_backward")?);
        launch
            .arg(&g.d_act.ptr)
            .arg(&a.gate.ptr)
            .arg(&a.up.ptr)
            .arg(&g.d_gate.ptr)
            .arg(&g.d_up.ptr)
            .arg(&n_inter);
        // SAFETY: five buffers of tokens × intermediate elements.
        unsafe { launch.launch(self.gpu().persistent_grid(4, 256)) }.map_err(driver_error)?;
        p.w_gate_up.run(g.d_gate.ptr, a.h2.ptr, g.w_gate.ptr)?;
        p.w_gate_up.run(g.d_up.ptr, a.h2.ptr, g.w_up.ptr)?;
        p.in_gate_up.run(g.d_gate.ptr, w.gate.ptr, g.d_h2.ptr)?;
        p.in_gate_up
            .run_beta(g.d_up.ptr, w.up.ptr, g.d_h2.ptr, 1.0)?;
        // x2 = x + attn·Woᵀ; dy passes the residual unchanged.
        self.rms_norm_backward(a.x2.ptr, g.d_h2.ptr, g.dy.ptr, g.d_x2.ptr)?;
        p.in_o.run(g.d_x2.ptr, w.o.ptr, g.d_attn.ptr)?;
        p.w_o.run(g.d_x2.ptr, a.attn.ptr, g.w_o.ptr)?;
        self.attention_backward()?;
        p.w_q.run(g.d_q.ptr, a.h1.ptr, g.w_q.ptr)?;
        p.w_kv.run(g.d_k.ptr, a.h1.ptr, g.w_k.ptr)?;
        p.w_kv.run(g.d_v.ptr, a.h1.ptr, g.w_v.ptr)?;
        p.in_q.run(g.d_q.ptr, w.q.ptr, g.d_h1.ptr)?;
        p.in_kv.run_beta(g.d_k.ptr, w.k.ptr, g.d_h1.ptr, 1.0)?;
        p.in_kv.run_beta(g.d_v.ptr, w.v.ptr, g.d_h1.ptr, 1.0)?;
        self.rms_norm_backward(x, g.d_h1.ptr, g.d_x2.ptr, g.d_x.ptr)
    }
}

/// Threads for a one-block-per-row kernel: whole warps, each thread holding up to 32 values.
fn row_threads(cols: u32) -> u32 {
    (cols / 8).div_ceil(4).div_ceil(32).clamp(1, 8) * 32
}

/// A whole buffer on the host, as f64 (activations and gradients are at most tens of MB).
fn host(gpu: &Gpu, elem: ElemType, buf: &Buffer) -> Result<Vec<f64>, KernelError> {
    gpu.download(buf.ptr, elem, 0, buf.bytes / elem.size_bytes())
}

/// Sampled (actual, expected) pairs, each stage scaled by its largest sampled reference.
struct Checks {
    rng: Rng,
    actual: Vec<f64>,
    expected: Vec<f64>,
    stages: usize,
}

const SAMPLES: usize = 16;

impl Checks {
    fn stage(&mut self, pairs: Vec<(f64, f64)>) {
        let scale = pairs
            .iter()
            .map(|(_, e)| e.abs())
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE);
        for (a, e) in pairs {
            self.actual.push(a / scale);
            self.expected.push(e / scale);
        }
        self.stages += 1;
    }

    /// `out[t×cols] = Σ over terms of dY[t×rows]·W[rows×cols]`.
    fn input_grad(&mut self, out: &[f64], terms: &[(&[f64], &[f64])], tokens: usize) {
        let cols = out.len() / tokens;
        let pairs = (0..SAMPLES)
            .map(|_| {
                let (t, c) = (self.rng.index(tokens), self.rng.index(cols));
                let expected = terms
                    .iter()
                    .map(|(dy, w)| {
                        let rows = dy.len() / tokens;
                        (0..rows)
                            .map(|r| dy[t * rows + r] * w[r * cols + c])
                            .sum::<f64>()
                    })
                    .sum();
                (out[t * cols + c], expected)
            })
            .collect();
        self.stage(pairs);
    }

    /// `dw[rows×cols] = dY[t×rows]ᵀ·X[t×cols]`.
    fn weight_grad(&mut self, dw: &[f64], dy: &[f64], x: &[f64], tokens: usize) {
        let (rows, cols) = (dy.len() / tokens, x.len() / tokens);
        let pairs = (0..SAMPLES)
            .map(|_| {
                let (r, c) = (self.rng.index(rows), self.rng.index(cols));
                let expected = (0..tokens)
                    .map(|t| dy[t * rows + r] * x[t * cols + c])
                    .sum();
                (dw[r * cols + c], expected)
            })
            .collect();
        self.stage(pairs);
    }

    /// `out = residual + r·dh − x·r³·(dh·x)/n` on sampled rows.
    fn rms_norm_backward(
        &mut self,
        out: &[f64],
        x: &[f64],
        dh: &[f64],
        residual: &[f64],
        width: usize,
    ) {
        let mut pairs = Vec::new();
        for _ in 0..4 {
            let t = self.rng.index(out.len() / width);
            let row = |v: &'_ [f64]| v[t * width..][..width].to_vec();
            let (x, dh, res, out) = (row(x), row(dh), row(residual), row(out));
            for _ in 0..4 {
                let c = self.rng.index(width);
                let dx = silirep_core::reference::rms_norm_backward_at(&x, &dh, EPS as f64, c);
                pairs.push((out[c], res[c] + dx));
            }
        }
        self.stage(pairs);
    }

    /// Sampled entries of a batched `C = alpha·op(A)·op(B)` over heads, strides as stored.
    #[allow(clippy::too_many_arguments)]
    fn batched(
        &mut self,
        c: &[f64],
        a: &[f64],
        b: &[f64],
        (m, n, k): (usize, usize, usize),
        a_t: bool,
        b_t: bool,
        alpha: f64,
    ) {
        let heads = c.len() / (m * n);
        let pairs = (0..SAMPLES)
            .map(|_| {
                let (h, i, j) = (self.rng.index(heads), self.rng.index(m), self.rng.index(n));
                let (a, b) = (&a[h * m * k..][..m * k], &b[h * k * n..][..k * n]);
                let expected = (0..k)
                    .map(|l| {
                        let x = if a_t { a[l * m + i] } else { a[i * k + l] };
                        let y = if b_t { b[j * k + l] } else { b[l * n + j] };
                        x * y
                    })
                    .sum::<f64>()
                    * alpha;
                (c[(h * m + i) * n + j], expected)
            })
            .collect();
        self.stage(pairs);
    }
}

impl PreparedKernel for LayerBackward<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let group = self.group;
        self.gpu().time(iterations, group, || self.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once()?;
        let gpu = self.gpu();
        gpu.synchronize()?;
        let elem = self.forward.elem;
        let get = |buf: &Buffer| host(gpu, elem, buf);
        let s = self.forward.shape;
        let (h, qd, kvd, _) = dims(&s);
        let (t, heads, kv, d) = (
            self.tokens() as usize,
            s.heads as usize,
            s.kv_heads as usize,
            s.head_dim as usize,
        );
        let (a, w, g, hb) = (
            &self.forward.acts,
            &self.forward.weights,
            &self.grads,
            &self.heads,
        );
        let mut c = Checks {
            rng: Rng::new(0xbac4),
            actual: Vec::new(),
            expected: Vec::new(),
            stages: 0,
        };
        // Feed-forward block.
        let dy = get(&g.dy)?;
        let d_act = get(&g.d_act)?;
        c.input_grad(&d_act, &[(&dy, &get(&w.down)?)], t);
        let act = get(&a.act)?;
        c.weight_grad(&get(&g.w_down)?, &dy, &act, t);
        drop(act);
        let (gate, up) = (get(&a.gate)?, get(&a.up)?);
        let (d_gate, d_up) = (get(&g.d_gate)?, get(&g.d_up)?);
        let mut pairs = Vec::new();
        for _ in 0..SAMPLES {
            let i = c.rng.index(gate.len());
            let (da, gi, u) = (d_act[i], gate[i], up[i]);
            let sig = 1.0 / (1.0 + (-gi).exp());
            pairs.push((d_gate[i], da * u * sig * (1.0 + gi * (1.0 - sig))));
            pairs.push((d_up[i], da * gi * sig));
        }
        c.stage(pairs);
        drop((gate, up, d_act));
        let h2 = get(&a.h2)?;
        c.weight_grad(&get(&g.w_gate)?, &d_gate, &h2, t);
        c.weight_grad(&get(&g.w_up)?, &d_up, &h2, t);
        drop(h2);
        let d_h2 = get(&g.d_h2)?;
        c.input_grad(
            &d_h2,
            &[(&d_gate, &get(&w.gate)?), (&d_up, &get(&w.up)?)],
            t,
        );
        drop((d_gate, d_up));
        let d_x2 = get(&g.d_x2)?;
        c.rms_norm_backward(&d_x2, &get(&a.x2)?, &d_h2, &dy, h as usize);
        drop((d_h2, dy));
        // Attention block.
        let d_attn = get(&g.d_attn)?;
        c.input_grad(&d_attn, &[(&d_x2, &get(&w.o)?)], t);
        c.weight_grad(&get(&g.w_o)?, &d_x2, &get(&a.attn)?, t);
        // Rearrangement into per-head matrices (exact copies).
        let (q, k, v) = (get(&a.q)?, get(&a.k)?, get(&a.v)?);
        let (hq, hk, hv, hdo) = (get(&hb.q)?, get(&hb.k)?, get(&hb.v)?, get(&hb.d_out)?);
        let group = heads / kv;
        let mut pairs = Vec::new();
        for _ in 0..SAMPLES {
            let (hh, i, e) = (c.rng.index(heads), c.rng.index(t), c.rng.index(d));
            let at = (hh * t + i) * d + e;
            let (qi, ki) = (
                i * qd as usize + hh * d + e,
                i * kvd as usize + hh / group * d + e,
            );
            pairs.extend([
                (hq[at], q[qi]),
                (hk[at], k[ki]),
                (hv[at], v[ki]),
                (hdo[at], d_attn[qi]),
            ]);
        }
        c.stage(pairs);
        // P = softmax(Q·Kᵀ/√d) on sampled rows, from the per-head Q and K.
        let scale = 1.0 / (d as f64).sqrt();
        let p = get(&hb.p)?;
        let mut pairs = Vec::new();
        for _ in 0..4 {
            let (hh, i) = (c.rng.index(heads), c.rng.index(t));
            let qi = &hq[(hh * t + i) * d..][..d];
            let logits: Vec<f64> = (0..t)
                .map(|j| dot(qi, &hk[(hh * t + j) * d..][..d]) * scale)
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for _ in 0..4 {
                let j = c.rng.index(t);
                pairs.push((p[(hh * t + i) * t + j], e[j] / total));
            }
        }
        c.stage(pairs);
        let d_p = get(&hb.d_p)?;
        c.batched(&get(&hb.d_v)?, &p, &hdo, (t, d, t), true, false, 1.0);
        c.batched(&d_p, &hdo, &hv, (t, t, d), false, true, 1.0);
        let d_s = get(&hb.d_s)?;
        let mut pairs = Vec::new();
        for _ in 0..4 {
            let row = c.rng.index(heads * t);
            let (pr, gr) = (&p[row * t..][..t], &d_p[row * t..][..t]);
            let weighted = dot(pr, gr);
            for _ in 0..4 {
                let j = c.rng.index(t);
                pairs.push((d_s[row * t + j], pr[j] * (gr[j] - weighted)));
            }
        }
        c.stage(pairs);
        drop((p, d_p));
        let (hdq, hdk, hdv) = (get(&hb.d_q)?, get(&hb.d_k)?, get(&hb.d_v)?);
        c.batched(&hdq, &d_s, &hk, (t, d, t), false, false, scale);
        c.batched(&hdk, &d_s, &hq, (t, d, t), true, false, scale);
        // Back to the projections' layout, K and V summed over each group of query heads.
        let (d_q, d_k, d_v) = (get(&g.d_q)?, get(&g.d_k)?, get(&g.d_v)?);
        let mut pairs = Vec::new();
        for _ in 0..SAMPLES {
            let (i, e) = (c.rng.index(t), c.rng.index(d));
            let hh = c.rng.index(heads);
            pairs.push((d_q[i * qd as usize + hh * d + e], hdq[(hh * t + i) * d + e]));
            let gg = c.rng.index(kv);
            let sum = |src: &[f64]| {
                (0..group)
                    .map(|j| src[((gg * group + j) * t + i) * d + e])
                    .sum::<f64>()
            };
            pairs.push((d_k[i * kvd as usize + gg * d + e], sum(&hdk)));
            pairs.push((d_v[i * kvd as usize + gg * d + e], sum(&hdv)));
        }
        c.stage(pairs);
        drop((hq, hk, hv, hdo, d_s, hdq, hdk, hdv, q, k, v));
        let h1 = get(&a.h1)?;
        c.weight_grad(&get(&g.w_q)?, &d_q, &h1, t);
        c.weight_grad(&get(&g.w_k)?, &d_k, &h1, t);
        c.weight_grad(&get(&g.w_v)?, &d_v, &h1, t);
        drop(h1);
        let d_h1 = get(&g.d_h1)?;
        c.input_grad(
            &d_h1,
            &[
                (&d_q, &get(&w.q)?),
                (&d_k, &get(&w.k)?),
                (&d_v, &get(&w.v)?),
            ],
            t,
        );
        c.rms_norm_backward(&get(&g.d_x)?, &get(&a.input)?, &d_h1, &d_x2, h as usize);
        let stages = c.stages;
        Ok(compare_outputs(
            &c.actual,
            &c.expected,
            // Each stage rounds its output to 16 bits once; f32 accumulation inside.
            4.0 * elem.unit_roundoff(),
            &format!(
                "every stage of the backward ({stages} stages: 14 weight/input-gradient GEMMs, SwiGLU and RMSNorm backward, per-head rearrangement, recomputed P, dV, dP, dS, dQ, dK, regrouping) on sampled entries vs f64 from the stage's stored inputs, errors relative to each stage's largest sampled reference"
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            (
                "timed".into(),
                "the backward pass alone, from activations of one forward run in prepare".into(),
            ),
            (
                "gemms".into(),
                format!(
                    "cuBLASLt; input gradient of down: {}; weight gradient of down: {}",
                    self.plans.in_down.describe(),
                    self.plans.w_down.describe()
                ),
            ),
            (
                "attention_backward".into(),
                "unfused: P recomputed by a batched GEMM and softmax (FLOPs not counted), dV, dP, dQ, dK as batched GEMMs over 32 query heads (K, V expanded per head, their gradients summed per group), softmax backward kernel".into(),
            ),
        ]);
        d.extend(crate::device::grouped_timing_detail(self.group, "passes"));
        d
    }
}
