#!/usr/bin/env bash
# silirep's write, copy and read against PyTorch's fill_, copy_ and sum, over f64 arrays of
# 0.25, 1, 4 and 8 GiB, in alternating rounds on one GPU (silirep first in odd rounds, PyTorch
# first in even ones), each side warmed up for one second per configuration. Memory bandwidth
# moves by a few per cent between processes on the same GPU, so one pair of runs proves
# nothing; the summary gives every round and the median ratio per configuration.
#
# Usage: bench/peers/cuda_bandwidth_rounds.sh SILIREP_BINARY [ROUNDS] [WORK_DIR]
set -euo pipefail

silirep=${1:?usage: cuda_bandwidth_rounds.sh SILIREP_BINARY [ROUNDS] [WORK_DIR]}
rounds=${2:-3}
work=${3:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
if [[ -n $(ls -A "$work") ]]; then
    echo "cuda_bandwidth_rounds.sh: $work is not empty; give a fresh directory" >&2
    exit 2
fi

for round in $(seq 1 "$rounds"); do
    if ((round % 2)); then order="silirep torch"; else order="torch silirep"; fi
    for who in $order; do
        if [[ $who == silirep ]]; then
            "$silirep" measure --backend cuda --kernels bandwidth_write,bandwidth_copy,bandwidth_read \
                --sizes 256MiB,1GiB,4GiB,8GiB --out "$work/round$round" >/dev/null
        else
            python3 "$here/torch_cuda_baseline.py" --only bandwidth --bandwidth-gib 0.25,1,4,8 \
                --json "$work/round$round-torch.json" >/dev/null
        fi
    done
done

python3 - "$work" "$rounds" <<'PY'
import glob, json, statistics, sys
from collections import defaultdict

work, rounds = sys.argv[1], int(sys.argv[2])
peer = {"write": "bandwidth_write (fill_)", "copy": "bandwidth_copy (copy_)", "read": "bandwidth_read (sum)"}
ratios = defaultdict(list)
print(f"{'round':>5} {'kernel':>6} {'GiB':>5} {'silirep TB/s':>12} {'torch TB/s':>10} {'ratio':>6}  silirep's copy method")
for r in range(1, rounds + 1):
    (run_file,) = glob.glob(f"{work}/round{r}/raw/*/*.json")
    run = json.load(open(run_file))
    torch_rows = {(row["name"], row["config"]): row for row in json.load(open(f"{work}/round{r}-torch.json"))["rows"]}
    for m in run["measurements"]:
        op, size = m["params"]["op"], m["params"]["array_bytes"]
        if m["error"] or not m["samples_s"]:
            print(f"{r:>5} {op:>6} silirep failed: {m['error']}")
            continue
        ours = m["bytes"] / statistics.median(m["samples_s"]) / 1e12
        theirs = torch_rows[(peer[op], f"array_bytes={size}")]["gb_per_s"] / 1e3
        ratios[(op, size)].append(ours / theirs)
        method = m["details"].get("copy_method", "")
        print(f"{r:>5} {op:>6} {size / 2**30:5.2f} {ours:12.3f} {theirs:10.3f} {ours / theirs:6.3f}  {method}")
for (op, size), values in sorted(ratios.items()):
    print(f"{op} {size / 2**30:.2f} GiB: median ratio {statistics.median(values):.3f} over {len(values)} "
          f"rounds (min {min(values):.3f}, max {max(values):.3f}); > 1 means silirep is faster")
PY
