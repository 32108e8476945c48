#!/usr/bin/env python3
"""PyTorch side of the CUDA backend's comparison: the same configurations `silirep measure
--backend cuda` runs, timed the same way (CUDA events, median of many repetitions after a
warm-up), so docs/PERFORMANCE.md can put the two side by side.

Work is counted with silirep's formulas (silirep-core/src/kernels.rs): GEMM 2·m·n·k FLOPs;
copy moves 2·N bytes (read + write), a sum reads N bytes, a fill writes N bytes; attention
4·b·h·s²·d FLOPs (causal: half that).

Usage: python3 bench/peers/torch_cuda_baseline.py [--json out.json] [--only gemm,bandwidth,...]
       [--gemm-sizes 4096,8192] [--bandwidth-gib 1,2] [--warmup-time SECONDS]
"""

import argparse
import json
import math
import statistics
import time

import torch


# Seconds each configuration runs untimed first, as `silirep measure --suite standard` does
# (settings.warmup_time_s): a large GEMM takes the H100 from its 1980 MHz boost to ~1500 MHz at
# the 700 W power cap within a fraction of a second, so both sides are timed at sustained clocks.
WARMUP_S = 1.0


def time_ms(fn, reps=50, warmup=5):
    """Median milliseconds of `fn`, one CUDA event pair per repetition."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    while time.perf_counter() - start < WARMUP_S:
        fn()
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def random(shape, dtype, scale=1.0):
    # Uniform in ±scale, like silirep's fills (randn would give the same speed).
    return ((torch.rand(shape, device="cuda", dtype=torch.float32) * 2 - 1) * scale).to(dtype)


def layer_backward(row):
    import torch.nn.functional as F

    t, hidden, heads, kv_heads, d, inter = 512, 4096, 32, 8, 128, 14336
    dt = torch.bfloat16

    def weight(out, inp):
        # ±(power of two ≤ 1/√fan-in), as silirep fills its weights.
        bound = 2.0 ** math.floor(-0.5 * math.log2(inp))  # the largest power of two ≤ 1/√inp, as silirep
        return random((out, inp), dt, bound).requires_grad_()

    wq, wk, wv = weight(heads * d, hidden), weight(kv_heads * d, hidden), weight(kv_heads * d, hidden)
    wo = weight(hidden, heads * d)
    wg, wu, wd = weight(inter, hidden), weight(inter, hidden), weight(hidden, inter)
    params = [wq, wk, wv, wo, wg, wu, wd]
    x = random((t, hidden), dt).requires_grad_()

    def rms(v):
        return v * torch.rsqrt(v.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(v.dtype)

    h1 = rms(x)
    q = (h1 @ wq.T).view(1, t, heads, d).transpose(1, 2)
    k = (h1 @ wk.T).view(1, t, kv_heads, d).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
    v = (h1 @ wv.T).view(1, t, kv_heads, d).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
    a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(t, heads * d)
    x2 = x + a @ wo.T
    h2 = rms(x2)
    y = x2 + (F.silu(h2 @ wg.T) * (h2 @ wu.T)) @ wd.T
    dy = random((t, hidden), dt)
    ms = time_ms(lambda: torch.autograd.grad(y, [x] + params, dy, retain_graph=True), reps=30)
    weights = sum(p.numel() for p in params)
    flops = 2 * (2 * t * weights + 4 * heads * t * t * d)
    row("layer_backward_bf16 (autograd)", f"seq={t}", ms, flops=flops)


def main():
    global WARMUP_S
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument(
        "--only",
        default="gemm,bandwidth,attention,layer",
        help="comma-separated sections to run (gemm, bandwidth, attention, layer)",
    )
    parser.add_argument("--gemm-sizes", default="4096,8192", help="comma-separated GEMM sizes")
    parser.add_argument(
        "--bandwidth-gib", default="1,2", help="comma-separated array sizes in GiB (0.25 allowed)"
    )
    parser.add_argument("--warmup-time", type=float, default=WARMUP_S, help="untimed seconds first")
    args = parser.parse_args()
    WARMUP_S = args.warmup_time
    sections = set(args.only.split(","))
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []

    def row(name, config, ms, flops=None, bytes_=None):
        r = {"name": name, "config": config, "median_ms": ms}
        if flops:
            r["tflop_per_s"] = flops / (ms * 1e-3) / 1e12
        if bytes_:
            r["gb_per_s"] = bytes_ / (ms * 1e-3) / 1e9
        rows.append(r)

    # GEMM: torch.matmul on row-major [n×n] operands.
    for dtype, name in [(torch.bfloat16, "bf16"), (torch.float16, "f16")]:
        if "gemm" not in sections:
            break
        for n in [int(size) for size in args.gemm_sizes.split(",")]:
            a, b = random((n, n), dtype), random((n, n), dtype)
            ms = time_ms(lambda: torch.matmul(a, b), reps=50)
            row(f"gemm_{name}", f"m=n=k={n}", ms, flops=2 * n**3)
        del a, b

    # Bandwidth: fill_ (bytes written), copy_ (bytes read + written) and sum (bytes read) over
    # f64 arrays, silirep's write, copy and read.
    sizes = [int(float(g) * (1 << 30)) for g in args.bandwidth_gib.split(",")]
    for array_bytes in sizes if "bandwidth" in sections else []:
        n = array_bytes // 8
        src = torch.rand(n, device="cuda", dtype=torch.float64)
        dst = torch.empty_like(src)
        ms = time_ms(lambda: dst.fill_(1.25), reps=50)
        row("bandwidth_write (fill_)", f"array_bytes={array_bytes}", ms, bytes_=array_bytes)
        ms = time_ms(lambda: dst.copy_(src), reps=50)
        row("bandwidth_copy (copy_)", f"array_bytes={array_bytes}", ms, bytes_=2 * array_bytes)
        ms = time_ms(lambda: src.sum(), reps=50)
        row("bandwidth_read (sum)", f"array_bytes={array_bytes}", ms, bytes_=array_bytes)
        del src, dst
        torch.cuda.empty_cache()

    # Attention, batch 1, 32 heads, head_dim 128, Q in ±4 and K, V in ±1 as in silirep.
    for dtype, name in [(torch.float16, "f16"), (torch.bfloat16, "bf16")]:
        if "attention" not in sections:
            break
        for seq in [1024, 4096, 8192]:
            h, d = 32, 128
            q = random((1, h, seq, d), dtype, 4.0)
            k = random((1, h, seq, d), dtype)
            v = random((1, h, seq, d), dtype)
            flops = 4 * h * seq * seq * d
            # Naive: the 1/√d scale is folded into Q beforehand, so the timed sequence is
            # exactly matmul, softmax, matmul (silirep folds it into its first GEMM).
            qs = q * d**-0.5
            kt = k.transpose(-2, -1)
            ms = time_ms(lambda: torch.matmul(torch.softmax(torch.matmul(qs, kt), dim=-1), v), reps=30)
            row(f"attention_naive_{name}", f"seq={seq}", ms, flops=flops)
            ms = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), reps=30)
            row(f"attention_sdpa_{name}", f"seq={seq}", ms, flops=flops)
            # Causal, counted as half the FLOPs (FlashAttention's convention, as silirep counts
            # `--causal` attention).
            ms = time_ms(
                lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
                reps=30,
            )
            row(f"attention_sdpa_causal_{name}", f"seq={seq}", ms, flops=flops / 2)
            del q, k, v, qs, kt

    # Mistral-7B-shaped layer backward, bf16, seq 512 (silirep's `layer_backward` row): the same
    # layer as silirep's (RMSNorm without gain, grouped K/V, non-causal attention, SwiGLU,
    # residuals, no rotary embedding), the backward alone timed from a kept forward graph.
    # FLOPs by silirep's rule: 2 × forward = 2 × (2·t·weights + 4·h·s²·d).
    try:
        if "layer" in sections:
            layer_backward(row)
    except Exception as e:  # keep the rows above even if this one cannot run
        print(f"layer backward: {e}")

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")
    print(f"{'name':28} {'config':24} {'median ms':>10} {'TFLOP/s':>9} {'GB/s':>9}")
    for r in rows:
        tf = f"{r['tflop_per_s']:.1f}" if "tflop_per_s" in r else ""
        gb = f"{r['gb_per_s']:.0f}" if "gb_per_s" in r else ""
        print(f"{r['name']:28} {r['config']:24} {r['median_ms']:10.4f} {tf:>9} {gb:>9}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
