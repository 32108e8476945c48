#!/usr/bin/env bash
# Side-by-side CPU baselines, in one run on one quiet machine:
#   - triad bandwidth: silirep vs McCalpin STREAM (gcc -O3 -march=native -fopenmp), same
#     array size (4x the last-level cache per array, as silirep's standard suite uses);
#   - f32 GEMM at 2048 and 4096: silirep vs numpy (OpenBLAS).
# Usage: bench/peers/cpu_peers.sh <path to McCalpin's stream.c> [silirep binary]
# stream.c is not part of this repository (its licence asks for unmodified publication of
# results); fetch it from https://github.com/jeffhammond/STREAM or www.cs.virginia.edu/stream.
set -euo pipefail
stream_c=${1:?usage: cpu_peers.sh <stream.c> [silirep binary]}
silirep=${2:-target/release/silirep}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The last-level cache as silirep sees it (sysfs), so both programs stream the same bytes.
llc_kib=$(sed 's/K$//' /sys/devices/system/cpu/cpu0/cache/index3/size)
llc_bytes=$((llc_kib * 1024))
array_bytes=$(( (llc_bytes * 4 + (1 << 20) - 1) / (1 << 20) * (1 << 20) ))
elements=$((array_bytes / 8))
threads=$(nproc)

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads, LLC $((llc_bytes >> 20)) MiB"
echo "== array: $elements doubles ($((array_bytes >> 20)) MiB) per array"

gcc --version | head -1
gcc -O3 -march=native -fopenmp -DSTREAM_ARRAY_SIZE="$elements" -DNTIMES=50 "$stream_c" -o "$work/stream"
# Memory bandwidth on shared machines drifts from minute to minute, so the two programs
# alternate for several rounds and each round is compared on its own.
for round in 1 2 3; do
  echo "== round $round: McCalpin STREAM"
  OMP_NUM_THREADS=$threads "$work/stream" | grep -E '^(Function|Triad)'
  echo "== round $round: silirep triad"
  "$silirep" measure --backend cpu --kernels bandwidth_triad --sizes "$((array_bytes >> 20))MiB" \
    --max-time 5 --out "$work/results$round" --label peers >/dev/null 2>&1
  python3 - "$work/results$round" <<'PY'
import json, pathlib, statistics, sys
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*.json")):
    for m in json.loads(f.read_text())["measurements"]:
        s = m["samples_s"]
        print(f"silirep {m['kernel']} {m['params']}: n={len(s)} "
              f"best {m['bytes'] / min(s) / 1e6:.1f} MB/s, median {m['bytes'] / statistics.median(s) / 1e6:.1f} MB/s, "
              f"mean {m['bytes'] / statistics.mean(s) / 1e6:.1f} MB/s")
PY
done

echo "== numpy (OpenBLAS) f32 GEMM"
python3 - <<'PY'
import time, statistics, numpy as np
cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
print("numpy", np.__version__, "BLAS", cfg.get("name"), cfg.get("version"))
rng = np.random.default_rng(1)
for n in (2048, 4096):
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    for _ in range(3):
        a @ b
    times = []
    end = time.perf_counter() + 10
    while time.perf_counter() < end or len(times) < 10:
        t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
    flops = 2 * n ** 3
    print(f"numpy gemm {n}: n={len(times)} best {flops / min(times) / 1e9:.1f} GFLOP/s, "
          f"median {flops / statistics.median(times) / 1e9:.1f} GFLOP/s")
PY

echo "== silirep f32 GEMM"
"$silirep" measure --backend cpu --kernels gemm --dtypes f32 --sizes 2048,4096 \
  --max-time 10 --out "$work/gemm" --label peers >/dev/null 2>&1
python3 - "$work/gemm" <<'PY'
import json, pathlib, statistics, sys
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*.json")):
    for m in json.loads(f.read_text())["measurements"]:
        s = m["samples_s"]
        print(f"silirep gemm {m['params']['m']}: n={len(s)} verification {m['verification']['status']}, "
              f"best {m['flops'] / min(s) / 1e9:.1f} GFLOP/s, median {m['flops'] / statistics.median(s) / 1e9:.1f} GFLOP/s")
PY
