#!/usr/bin/env bash
# silirep's f16 and bf16 GEMM at 8192³ against torch.matmul, in alternating rounds on one GPU
# (silirep first in odd rounds, PyTorch first in even ones), both timed at sustained clocks
# after one second of untimed running. One run of each is not enough on a power-capped GPU:
# what ran just before changes the clock. The summary gives every round and the median ratio.
#
# Usage: bench/peers/cuda_gemm_rounds.sh SILIREP_BINARY [ROUNDS] [WORK_DIR]
set -euo pipefail

silirep=${1:?usage: cuda_gemm_rounds.sh SILIREP_BINARY [ROUNDS] [WORK_DIR]}
rounds=${2:-4}
work=${3:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
if [[ -n $(ls -A "$work") ]]; then
    echo "cuda_gemm_rounds.sh: $work is not empty; give a fresh directory" >&2
    exit 2
fi

for round in $(seq 1 "$rounds"); do
    if ((round % 2)); then order="silirep torch"; else order="torch silirep"; fi
    for who in $order; do
        if [[ $who == silirep ]]; then
            "$silirep" measure --backend cuda --kernels gemm --dtypes f16,bf16 --sizes 8192 \
                --out "$work/round$round" >/dev/null
        else
            python3 "$here/torch_cuda_baseline.py" --only gemm --gemm-sizes 8192 \
                --json "$work/round$round-torch.json" >/dev/null
        fi
    done
done

python3 - "$work" "$rounds" <<'EOF'
import glob, json, statistics, sys

work, rounds = sys.argv[1], int(sys.argv[2])
ratios = {"f16": [], "bf16": []}
print(f"{'round':>5} {'dtype':>5} {'silirep ms':>10} {'torch ms':>9} {'ratio':>6}  silirep clock / limit")
for r in range(1, rounds + 1):
    (run_file,) = glob.glob(f"{work}/round{r}/raw/*/*.json")
    run = json.load(open(run_file))
    torch_rows = {row["name"]: row for row in json.load(open(f"{work}/round{r}-torch.json"))["rows"]}
    for m in run["measurements"]:
        dtype = m["params"]["dtype"]
        if m["error"] or not m["samples_s"]:
            print(f"{r:>5} {dtype:>5} silirep failed: {m['error']}")
            continue
        ours = statistics.median(m["samples_s"]) * 1e3
        theirs = torch_rows[f"gemm_{dtype}"]["median_ms"]
        ratios[dtype].append(theirs / ours)
        clock = m["details"].get("sm_clock_mhz", "n/a")
        limit = m["details"].get("clock_limited_by", "n/a")
        print(f"{r:>5} {dtype:>5} {ours:10.4f} {theirs:9.4f} {theirs / ours:6.3f}  {clock} / {limit}")
for dtype, values in ratios.items():
    if not values:
        continue
    print(f"{dtype}: median ratio {statistics.median(values):.3f} over {len(values)} rounds "
          f"(min {min(values):.3f}, max {max(values):.3f}); > 1 means silirep is faster")
EOF
