#!/usr/bin/env python3
"""PyTorch side of the interconnect comparison: a GPU-to-GPU copy (`dst.copy_(src)` across
devices, which PyTorch does with cudaMemcpyPeerAsync once peer access is on) and host↔device
copies from and to pinned and pageable host tensors, at the sizes `silirep measure --kernels
interconnect` uses. Bytes are counted as silirep counts them (silirep-core/src/kernels.rs):
one copy of N bytes moves N bytes over the link.

Timing: median of many repetitions after a warm-up. Each sample is a group of back-to-back
copies between two CUDA events on the stream that does the copy (the source GPU for a peer
copy), divided by the group size, the way silirep times transfers; after every sample both
GPUs are synchronised.

Usage: python3 bench/peers/torch_interconnect.py [--json out.json] [--sizes 8,1073741824]
"""

import argparse
import json
import statistics
import time

import torch

WARMUP_S = 0.2


def time_s(fn, stream_device, group, reps):
    """Median seconds per call of `fn`, `group` calls per CUDA event pair on `stream_device`."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize(stream_device)
    start = time.perf_counter()
    while time.perf_counter() - start < WARMUP_S:
        fn()
        torch.cuda.synchronize(stream_device)
    times = []
    with torch.cuda.device(stream_device):
        for _ in range(reps):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(group):
                fn()
            b.record()
            b.synchronize()
            for d in range(torch.cuda.device_count()):
                torch.cuda.synchronize(d)
            times.append(a.elapsed_time(b) * 1e-3 / group)
    return statistics.median(times)


def group_for(nbytes):
    return max(1, min(256, (64 << 20) // max(nbytes, 1)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--sizes", default=f"8,{1 << 20},{64 << 20},{1 << 30}")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    n = torch.cuda.device_count()

    def record(kernel, params, nbytes, seconds):
        rows.append(
            {
                "kernel": kernel,
                "params": params,
                "bytes": nbytes,
                "median_s": seconds,
                "gb_per_s": nbytes / seconds / 1e9,
            }
        )
        print(f"{kernel:16} {json.dumps(params):48} {seconds * 1e6:12.2f} us {nbytes / seconds / 1e9:9.2f} GB/s", flush=True)

    for nbytes in sizes:
        words = nbytes // 4
        for src in range(n):
            for dst in range(n):
                if src == dst:
                    continue
                a = torch.randint(1, 1 << 20, (words,), device=f"cuda:{src}", dtype=torch.int32)
                b = torch.empty_like(a, device=f"cuda:{dst}")
                b.copy_(a)
                assert torch.equal(b.cpu(), a.cpu()), "peer copy differs"
                t = time_s(lambda: b.copy_(a, non_blocking=True), src, group_for(nbytes), 50)
                record("peer_copy", {"src_device": src, "dst_device": dst}, nbytes, t)
                del a, b
        dev = torch.empty(words, device="cuda:0", dtype=torch.int32)
        for memory in ["pinned", "pageable"]:
            host = torch.randint(1, 1 << 20, (words,), dtype=torch.int32)
            if memory == "pinned":
                host = host.pin_memory()
            pinned = memory == "pinned"
            reps = 20 if nbytes >= (1 << 30) else 50
            dev.copy_(host)
            assert torch.equal(dev.cpu(), host), "host to device copy differs"
            t = time_s(lambda: dev.copy_(host, non_blocking=pinned), 0, group_for(nbytes), reps)
            record("host_to_device", {"memory": memory, "device": 0}, nbytes, t)
            t = time_s(lambda: host.copy_(dev, non_blocking=pinned), 0, group_for(nbytes), reps)
            record("device_to_host", {"memory": memory, "device": 0}, nbytes, t)
            del host
        del dev
        torch.cuda.empty_cache()

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": [torch.cuda.get_device_name(i) for i in range(n)], "rows": rows},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
