//! A Mistral-shaped decoder layer in f16/bf16 — RMSNorm, Q/K/V/O projections with grouped KV
//! heads, non-causal fused attention, SwiGLU feed-forward, residuals — for `layer` forward
//! (and kept by the backward pass for its inputs). Decode has its own kernels (decode.rs).
//!
//! Projections are cuBLASLt GEMMs with weights stored `[out×in]` (the `nn.Linear` layout);
//! the elementwise stages are the kernels in layer.cu. Rotary embeddings are not applied
//! (no FLOP- or traffic-relevant effect), as in the CPU backend.
//!
//! Verification is stage by stage, as in the CPU backend: each stage of the last layer is
//! checked on sampled entries against an f64 recomputation from that stage's inputs as
//! stored on the device.

use crate::attention::{FLASH_BLOCK_M, FLASH_HEAD_DIM, FlashLayout, launch_flash};
use crate::device::{Buffer, Gpu, driver_error};
use crate::gemm::{Blas, GemmShape, GemmTypes, MatmulPlan};
use crate::host::{ElemType, Rng, dot};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::Verification;
use silirep_core::{Dtype, KernelError, LayerPart, LayerShape, PreparedKernel, reference};
use std::collections::BTreeMap;

pub(crate) const EPS: f32 = LayerShape::RMS_NORM_EPSILON;

pub(crate) struct Weights {
    pub(crate) q: Buffer,
    pub(crate) k: Buffer,
    pub(crate) v: Buffer,
    pub(crate) o: Buffer,
    pub(crate) gate: Buffer,
    pub(crate) up: Buffer,
    pub(crate) down: Buffer,
}

/// Activations of one pass.
pub(crate) struct Activations {
    pub(crate) input: Buffer,
    pub(crate) h1: Buffer,
    pub(crate) q: Buffer,
    pub(crate) k: Buffer,
    pub(crate) v: Buffer,
    pub(crate) attn: Buffer,
    pub(crate) o: Buffer,
    pub(crate) x2: Buffer,
    pub(crate) h2: Buffer,
    pub(crate) gate: Buffer,
    pub(crate) up: Buffer,
    pub(crate) act: Buffer,
    pub(crate) down: Buffer,
    pub(crate) y: Buffer,
}

struct Plans {
    q: MatmulPlan,
    kv: MatmulPlan,
    o: MatmulPlan,
    gate_up: MatmulPlan,
    down: MatmulPlan,
}

pub struct LayerForward<'a> {
    pub(crate) gpu: &'a Gpu,
    _blas: Blas,
    pub(crate) shape: LayerShape,
    pub(crate) elem: ElemType,
    batch: u64,
    pub(crate) seq: u64,
    pub(crate) weights: Weights,
    pub(crate) acts: Activations,
    plans: Plans,
    group: u32,
}

pub(crate) fn dims(shape: &LayerShape) -> (u64, u64, u64, u64) {
    (
        shape.hidden,
        shape.heads * shape.head_dim,
        shape.kv_heads * shape.head_dim,
        shape.intermediate,
    )
}

impl<'a> LayerForward<'a> {
    pub fn prepare(
        gpu: &'a Gpu,
        shape: LayerShape,
        batch: u64,
        seq: u64,
        dtype: Dtype,
        seed: u64,
    ) -> Result<LayerForward<'a>, KernelError> {
        let elem = ElemType::of(dtype)?;
        let suffix = elem.half_suffix()?;
        let (h, qd, kvd, inter) = dims(&shape);
        if shape.head_dim != FLASH_HEAD_DIM
            || !seq.is_multiple_of(FLASH_BLOCK_M)
            || shape.kv_heads == 0
            || !shape.heads.is_multiple_of(shape.kv_heads)
        {
            return Err(KernelError::Unsupported(format!(
                "the fused attention in the layer needs head_dim {FLASH_HEAD_DIM}, seq_len a multiple of {FLASH_BLOCK_M} and heads a multiple of kv_heads"
            )));
        }
        if h % 8 != 0 {
            return Err(KernelError::Unsupported(format!(
                "rms_norm_{suffix} needs hidden a multiple of 8"
            )));
        }
        let es = elem.size_bytes() as u64;
        let weight_bytes = shape.weights(LayerPart::Full) * es;
        if weight_bytes + (2 << 30) > gpu.free_bytes() {
            return Err(KernelError::OutOfMemory(format!(
                "a layer of {dtype} weights needs {weight_bytes} bytes; {} free on the GPU",
                gpu.free_bytes()
            )));
        }
        let tokens = batch * seq;
        let make = |rows: u64, cols: u64, tag: u64| {
            gpu.random_weights(rows, cols, elem, seed ^ tag, "layer weights")
        };
        let weights = Weights {
            q: make(qd, h, 1)?,
            k: make(kvd, h, 2)?,
            v: make(kvd, h, 3)?,
            o: make(h, qd, 4)?,
            gate: make(inter, h, 5)?,
            up: make(inter, h, 6)?,
            down: make(h, inter, 7)?,
        };
        let act = |width: u64, what: &str| gpu.alloc((tokens * width * es) as usize, what);
        let acts = Activations {
            input: act(h, "layer input")?,
            h1: act(h, "h1")?,
            q: act(qd, "q")?,
            k: act(kvd, "k")?,
            v: act(kvd, "v")?,
            attn: act(qd, "attention output")?,
            o: act(h, "o")?,
            x2: act(h, "x2")?,
            h2: act(h, "h2")?,
            gate: act(inter, "gate")?,
            up: act(inter, "up")?,
            act: act(inter, "swiglu")?,
            down: act(h, "down")?,
            y: act(h, "y")?,
        };
        gpu.fill(
            acts.input.ptr,
            (tokens * h) as usize,
            elem,
            1.0,
            seed ^ 0x1f,
        )?;
        let blas = Blas::new(gpu)?;
        let types = GemmTypes::of(dtype)?;
        let plan = |n: u64, k: u64| {
            MatmulPlan::new(gpu, &blas, GemmShape::single(tokens, n, k, true), types)
        };
        let mut plans = Plans {
            q: plan(qd, h)?,
            kv: plan(kvd, h)?,
            o: plan(h, qd)?,
            gate_up: plan(inter, h)?,
            down: plan(h, inter)?,
        };
        let w = &weights;
        plans.q.autotune(gpu, acts.h1.ptr, w.q.ptr, acts.q.ptr)?;
        plans.kv.autotune(gpu, acts.h1.ptr, w.k.ptr, acts.k.ptr)?;
        plans.o.autotune(gpu, acts.attn.ptr, w.o.ptr, acts.o.ptr)?;
        plans
            .gate_up
            .autotune(gpu, acts.h2.ptr, w.gate.ptr, acts.gate.ptr)?;
        plans
            .down
            .autotune(gpu, acts.act.ptr, w.down.ptr, acts.down.ptr)?;
        let mut layer = LayerForward {
            gpu,
            _blas: blas,
            shape,
            elem,
            batch,
            seq,
            weights,
            acts,
            plans,
            group: 1,
        };
        layer.group = gpu.group_for(|| layer.run_once())?;
        Ok(layer)
    }

    fn tokens(&self) -> u64 {
        self.batch * self.seq
    }

    fn elementwise(&self, name: &str, a: u64, b: u64, out: u64, n: u64) -> Result<(), KernelError> {
        let f = self
            .gpu
            .function(&format!("{name}_{}", self.elem.half_suffix()?))?;
        let mut launch = self.gpu.stream.launch_builder(f);
        launch.arg(&a).arg(&b).arg(&out).arg(&n);
        // SAFETY: (a, b, out, n) over n 16-bit elements, as in layer.cu.
        unsafe { launch.launch(self.gpu.persistent_grid(4, 256)) }.map_err(driver_error)?;
        Ok(())
    }

    fn rms_norm(&self, x: u64, y: u64) -> Result<(), KernelError> {
        let f = self
            .gpu
            .function(&format!("rms_norm_{}", self.elem.half_suffix()?))?;
        let width = self.shape.hidden as u32;
        let cfg = LaunchConfig {
            grid_dim: (self.tokens() as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.gpu.stream.launch_builder(f);
        launch.arg(&x).arg(&y).arg(&width).arg(&EPS);
        // SAFETY: one block per row of `width` elements.
        unsafe { launch.launch(cfg) }.map_err(driver_error)?;
        Ok(())
    }

    pub(crate) fn run_once(&self) -> Result<(), KernelError> {
        let (h, qd, kvd, inter) = dims(&self.shape);
        let t = self.tokens();
        let (a, p, w) = (&self.acts, &self.plans, &self.weights);
        let (x, y) = (a.input.ptr, a.y.ptr);
        self.rms_norm(x, a.h1.ptr)?;
        p.q.run(a.h1.ptr, w.q.ptr, a.q.ptr)?;
        p.kv.run(a.h1.ptr, w.k.ptr, a.k.ptr)?;
        p.kv.run(a.h1.ptr, w.v.ptr, a.v.ptr)?;
        let layout = FlashLayout {
            seq: self.seq as u32,
            heads: self.shape.heads as u32,
            kv_group: (self.shape.heads / self.shape.kv_heads) as u32,
            batches: self.batch as u32,
            q_strides: (self.seq * qd, self.shape.head_dim, qd),
            kv_strides: (self.seq * kvd, self.shape.head_dim, kvd),
            causal: false,
        };
        launch_flash(
            self.gpu, self.elem, &layout, a.q.ptr, a.k.ptr, a.v.ptr, a.attn.ptr,
        )?;
        p.o.run(a.attn.ptr, w.o.ptr, a.o.ptr)?;
        self.elementwise("add", x, a.o.ptr, a.x2.ptr, t * h)?;
        self.rms_norm(a.x2.ptr, a.h2.ptr)?;
        p.gate_up.run(a.h2.ptr, w.gate.ptr, a.gate.ptr)?;
        p.gate_up.run(a.h2.ptr, w.up.ptr, a.up.ptr)?;
        self.elementwise("silu_mul", a.gate.ptr, a.up.ptr, a.act.ptr, t * inter)?;
        p.down.run(a.act.ptr, w.down.ptr, a.down.ptr)?;
        self.elementwise("add", a.x2.ptr, a.down.ptr, y, t * h)
    }
}

/// Sampled (actual, expected) pairs gathered across the stages.
struct Checks<'g> {
    gpu: &'g Gpu,
    elem: ElemType,
    rng: Rng,
    actual: Vec<f64>,
    expected: Vec<f64>,
}

impl Checks<'_> {
    fn row(&self, buf: u64, width: u64, index: u64) -> Result<Vec<f64>, KernelError> {
        self.gpu
            .download(buf, self.elem, (index * width) as usize, width as usize)
    }

    fn projection(
        &mut self,
        out: u64,
        input: u64,
        weight: u64,
        tokens: u64,
        n: u64,
        k: u64,
    ) -> Result<(), KernelError> {
        for _ in 0..16 {
            let (t, c) = (
                self.rng.index(tokens as usize) as u64,
                self.rng.index(n as usize) as u64,
            );
            let x = self.row(input, k, t)?;
            let w = self.row(weight, k, c)?;
            self.actual
                .push(self.gpu.download(out, self.elem, (t * n + c) as usize, 1)?[0]);
            self.expected.push(dot(&x, &w));
        }
        Ok(())
    }

    fn elementwise(
        &mut self,
        out: u64,
        inputs: [u64; 2],
        len: u64,
        f: impl Fn(f64, f64) -> f64,
    ) -> Result<(), KernelError> {
        for _ in 0..16 {
            let i = self.rng.index(len as usize);
            let a = self.gpu.download(inputs[0], self.elem, i, 1)?[0];
            let b = self.gpu.download(inputs[1], self.elem, i, 1)?[0];
            self.actual
                .push(self.gpu.download(out, self.elem, i, 1)?[0]);
            self.expected.push(f(a, b));
        }
        Ok(())
    }

    fn rms_norm(
        &mut self,
        out: u64,
        input: u64,
        tokens: u64,
        width: u64,
    ) -> Result<(), KernelError> {
        for _ in 0..2 {
            let t = self.rng.index(tokens as usize) as u64;
            let x = self.row(input, width, t)?;
            let y = self.row(out, width, t)?;
            let inv = silirep_core::reference::rms_norm_scale(&x, EPS as f64);
            for _ in 0..8 {
                let c = self.rng.index(width as usize);
                self.actual.push(y[c]);
                self.expected.push(x[c] * inv);
            }
        }
        Ok(())
    }
}

impl PreparedKernel for LayerForward<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        self.gpu.time(iterations, self.group, || self.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.run_once()?;
        self.gpu.synchronize()?;
        let (h, qd, kvd, inter) = dims(&self.shape);
        let t = self.tokens();
        let (a, w) = (&self.acts, &self.weights);
        let (x, y) = (a.input.ptr, a.y.ptr);
        let mut c = Checks {
            gpu: self.gpu,
            elem: self.elem,
            rng: Rng::new(0x1a7e),
            actual: Vec::new(),
            expected: Vec::new(),
        };
        c.rms_norm(a.h1.ptr, x, t, h)?;
        c.projection(a.q.ptr, a.h1.ptr, w.q.ptr, t, qd, h)?;
        c.projection(a.k.ptr, a.h1.ptr, w.k.ptr, t, kvd, h)?;
        c.projection(a.v.ptr, a.h1.ptr, w.v.ptr, t, kvd, h)?;
        let d = self.shape.head_dim as usize;
        let group = (self.shape.heads / self.shape.kv_heads) as usize;
        let keys = self
            .gpu
            .download(a.k.ptr, self.elem, 0, (t * kvd) as usize)?;
        let values = self
            .gpu
            .download(a.v.ptr, self.elem, 0, (t * kvd) as usize)?;
        for _ in 0..2 {
            let (token, head) = (
                c.rng.index(t as usize),
                c.rng.index(self.shape.heads as usize),
            );
            let (b, g) = (token / self.seq as usize, head / group);
            let q = c.row(a.q.ptr, qd, token as u64)?;
            // Rows of this sequence's keys and values for the query head's KV head.
            let rows = |m: &[f64]| -> Vec<Vec<f64>> {
                (0..self.seq as usize)
                    .map(|j| m[(b * self.seq as usize + j) * kvd as usize + g * d..][..d].to_vec())
                    .collect()
            };
            let expected = reference::attention(&q[head * d..][..d], &rows(&keys), &rows(&values));
            let out = c.row(a.attn.ptr, qd, token as u64)?;
            c.actual.extend_from_slice(&out[head * d..][..d]);
            c.expected.extend(expected);
        }
        c.projection(a.o.ptr, a.attn.ptr, w.o.ptr, t, h, qd)?;
        c.elementwise(a.x2.ptr, [x, a.o.ptr], t * h, |x, o| x + o)?;
        c.rms_norm(a.h2.ptr, a.x2.ptr, t, h)?;
        c.projection(a.gate.ptr, a.h2.ptr, w.gate.ptr, t, inter, h)?;
        c.projection(a.up.ptr, a.h2.ptr, w.up.ptr, t, inter, h)?;
        c.elementwise(
            a.act.ptr,
            [a.gate.ptr, a.up.ptr],
            t * inter,
            reference::swiglu,
        )?;
        c.projection(a.down.ptr, a.act.ptr, w.down.ptr, t, h, inter)?;
        c.elementwise(y, [a.x2.ptr, a.down.ptr], t * h, |x, d| x + d)?;
        Ok(compare_outputs(
            &c.actual,
            &c.expected,
            // Each stage rounds its output to 16 bits; f32 accumulation inside.
            4.0 * self.elem.unit_roundoff(),
            "every stage (norms, 7 projections, attention rows, SwiGLU, residuals) on sampled entries vs f64 from the stage's stored inputs",
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            (
                "projections".into(),
                format!(
                    "cuBLASLt; q: {}; down: {}",
                    self.plans.q.describe(),
                    self.plans.down.describe()
                ),
            ),
            (
                "weights".into(),
                "random ±(power of two ≤ 1/√fan-in), stored [out×in]".into(),
            ),
            (
                "rotary_embedding".into(),
                "not applied (no FLOP- or traffic-relevant effect)".into(),
            ),
            (
                "attention".into(),
                "fused flash_attention kernel, grouped KV heads".into(),
            ),
        ]);
        d.extend(crate::device::grouped_timing_detail(self.group, "passes"));
        d
    }
}
