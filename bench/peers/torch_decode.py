#!/usr/bin/env python3
"""PyTorch side of the decode comparison: one generation step of `batch` sequences through the
32 Mistral-7B layers as silirep's `decode` kernel runs them, in f16, captured whole in a
torch.cuda.CUDAGraph and replayed.

The layer, as silirep computes it: RMSNorm without gain; separate q/k/v projections
(F.linear, weights [out×in] as nn.Linear and Hugging Face's Mistral store them); grouped KV
heads (8 KV heads for 32 query heads); the new token's key and value written into the last
slot of a static KV cache of `context` positions, and its query attending over the whole
cache; output projection and residual; SwiGLU feed-forward and residual. No rotary embedding
(silirep applies none either). Weights are random ±(power of two ≤ 1/√fan-in), the input and
the cache uniform in ±1, as silirep fills them, so no operand is all zeros.

Attention is run two ways, both without copying the cache per query head: matmul + softmax over
[batch, kv_heads, 4, …] views, and F.scaled_dot_product_attention with enable_gqa=True (when
this torch has it). Each row says which; the fastest per batch is marked `best`.

Timing: after capture, replays for WARMUP_S seconds, then one CUDA event pair around each of
REPS replays; the median is reported. Bytes and FLOPs by silirep's decode formulas
(silirep-core/src/kernels.rs, docs/results-schema.md).

Usage: python3 bench/peers/torch_decode.py [--batches 1,16,64] [--context 1024] [--json out.json]
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, LAYERS = 4096, 32, 8, 128, 14336, 32
EPS = 1e-5
WARMUP_S = 1.0
REPS = 100
DT = torch.float16


def uniform(shape, scale):
    return ((torch.rand(shape, device="cuda", dtype=torch.float32) * 2 - 1) * scale).to(DT)


def weight(out, inp):
    # ±(power of two ≤ 1/√fan-in), as silirep fills its weights.
    bound = 2.0 ** math.floor(-0.5 * math.log2(inp))  # the largest power of two ≤ 1/√inp, as silirep
    return uniform((out, inp), bound)


def rms(x):
    # No gain vector, as in silirep; computed in f32 like Hugging Face's MistralRMSNorm.
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)


def make_layers(batch, context):
    layers = []
    for _ in range(LAYERS):
        layers.append(
            dict(
                q=weight(HEADS * HEAD_DIM, HIDDEN),
                k=weight(KV_HEADS * HEAD_DIM, HIDDEN),
                v=weight(KV_HEADS * HEAD_DIM, HIDDEN),
                o=weight(HIDDEN, HEADS * HEAD_DIM),
                gate=weight(INTER, HIDDEN),
                up=weight(INTER, HIDDEN),
                down=weight(HIDDEN, INTER),
                k_cache=uniform((batch, KV_HEADS, context, HEAD_DIM), 1.0),
                v_cache=uniform((batch, KV_HEADS, context, HEAD_DIM), 1.0),
            )
        )
    return layers


def attend_matmul(q, kc, vc):
    # q [b, kv, group, d] against [b, kv, context, d]: the grouped heads share K and V.
    s = torch.matmul(q, kc.transpose(-1, -2)) * (HEAD_DIM**-0.5)
    p = torch.softmax(s.float(), dim=-1).to(q.dtype)
    return torch.matmul(p, vc)


def attend_sdpa(q, kc, vc):
    b = q.shape[0]
    out = F.scaled_dot_product_attention(q.reshape(b, HEADS, 1, HEAD_DIM), kc, vc, enable_gqa=True)
    return out.reshape(b, KV_HEADS, HEADS // KV_HEADS, HEAD_DIM)


def step(x, layers, context, attend):
    b = x.shape[0]
    group = HEADS // KV_HEADS
    for w in layers:
        h = rms(x)
        q = F.linear(h, w["q"]).view(b, KV_HEADS, group, HEAD_DIM)
        k = F.linear(h, w["k"]).view(b, KV_HEADS, HEAD_DIM)
        v = F.linear(h, w["v"]).view(b, KV_HEADS, HEAD_DIM)
        w["k_cache"][:, :, context - 1] = k
        w["v_cache"][:, :, context - 1] = v
        a = attend(q, w["k_cache"], w["v_cache"]).reshape(b, HEADS * HEAD_DIM)
        x = x + F.linear(a, w["o"])
        h = rms(x)
        x = x + F.linear(F.silu(F.linear(h, w["gate"])) * F.linear(h, w["up"]), w["down"])
    return x


def decode_bytes(batch, context):
    # silirep's formula: weights once, each layer's input read and output written, every
    # layer's KV cache (context − 1 earlier positions read, the new one written), 2 bytes each.
    weights = LAYERS * (2 * HIDDEN * HEADS * HEAD_DIM + 2 * HIDDEN * KV_HEADS * HEAD_DIM + 3 * HIDDEN * INTER)
    kv = 2 * batch * context * KV_HEADS * HEAD_DIM
    return 2 * (weights + 2 * batch * LAYERS * HIDDEN + LAYERS * kv), weights * 2


def measure(batch, context, name, attend):
    torch.manual_seed(batch)
    layers = make_layers(batch, context)
    x = uniform((batch, HIDDEN), 1.0)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(x, layers, context, attend)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = step(x, layers, context, attend)
    graph.replay()
    torch.cuda.synchronize()
    if not torch.isfinite(y).all() or y.abs().max().item() == 0:
        raise RuntimeError("decode output is not finite or all zero")
    start = time.perf_counter()
    while time.perf_counter() - start < WARMUP_S:
        graph.replay()
        torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        graph.replay()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    ms = statistics.median(times)
    nbytes, wbytes = decode_bytes(batch, context)
    del graph, layers
    torch.cuda.empty_cache()
    return {
        "name": "decode",
        "attention": name,
        "config": f"batch={batch} layers={LAYERS} context={context}",
        "batch": batch,
        "context": context,
        "median_ms": ms,
        "tokens_per_s": batch / (ms * 1e-3),
        "gb_per_s": nbytes / (ms * 1e-3) / 1e9,
        "bytes": nbytes,
        "weight_bytes": wbytes,
        "replays": REPS,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    if args.context < 1:
        parser.error("--context must be at least 1 (the new token's own slot)")
    variants = [("matmul+softmax", attend_matmul)]
    try:
        q = torch.zeros(1, HEADS, 1, HEAD_DIM, device="cuda", dtype=DT)
        kv = torch.zeros(1, KV_HEADS, 4, HEAD_DIM, device="cuda", dtype=DT)
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
        variants.append(("sdpa(enable_gqa)", attend_sdpa))
    except (TypeError, RuntimeError) as e:
        print(f"scaled_dot_product_attention with enable_gqa unavailable: {e}")
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        mine = [measure(batch, args.context, name, fn) for name, fn in variants]
        best = min(mine, key=lambda r: r["median_ms"])
        for r in mine:
            r["best"] = r is best
        rows += mine
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")
    print(f"{'config':36} {'attention':18} {'median ms':>10} {'tokens/s':>10} {'GB/s':>8}")
    for r in rows:
        mark = " best" if r["best"] else ""
        print(f"{r['config']:36} {r['attention']:18} {r['median_ms']:10.4f} {r['tokens_per_s']:10.1f} {r['gb_per_s']:8.1f}{mark}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
