#!/usr/bin/env bash
# silirep's all_reduce, all_gather and all_to_all (f32, 1 and 4 GiB, every visible GPU) against
# nccl-tests' `*_perf -g N` built here against the same NCCL (the nvidia-nccl-cu13 wheel's), in
# alternating rounds: the two differ by less than either moves between runs, so one pair of runs
# proves nothing. NVLink multicast (NVLS) stays off in every process.
#
# Usage: bench/peers/collective_rounds.sh SILIREP_BINARY NCCL_TESTS_SOURCE [ROUNDS] [WORK_DIR]
set -uo pipefail

silirep=${1:?usage: collective_rounds.sh SILIREP_BINARY NCCL_TESTS_SOURCE [ROUNDS] [WORK_DIR]}
source_dir=${2:?nccl-tests source folder}
rounds=${3:-3}
work=${4:-$(mktemp -d)}
mkdir -p "$work"
here=$(cd "$(dirname "$0")" && pwd)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
gpus=$(nvidia-smi -L | wc -l)
nccl=$(python3 -c 'import nvidia.nccl as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])')

# Built in the background while silirep's first measurements run (CPU vs GPU).
build=$(mktemp -d)
"$here/build_nccl_tests.sh" "$source_dir" "$build" >/dev/null 2>"$work/nccl-tests-build.log" &
builder=$!

export SILIREP_NCCL_LIB="$nccl/lib/libnccl.so.2"
for round in $(seq 1 "$rounds"); do
    "$silirep" measure --backend cuda --kernels all_reduce,all_gather,all_to_all --sizes 1GiB,4GiB \
        --dtypes f32 --warmup-time 0.5 --max-time 1.5 --out "$work/silirep$round" \
        >"$work/silirep$round.log" 2>&1 || echo "silirep round $round failed"
    if ((round == 1)); then
        wait "$builder" || { echo "nccl-tests build failed (see nccl-tests-build.log)"; exit 1; }
    fi
    for test in all_reduce all_gather alltoall; do
        LD_LIBRARY_PATH="$nccl/lib:${LD_LIBRARY_PATH:-}" "$build/${test}_perf" -g "$gpus" -b 1G -e 4G -f 4 \
            -d float -w 10 -n 50 >"$work/nccl-tests-$test-$round.txt" 2>&1 || echo "${test}_perf failed"
    done
done

python3 - "$work" "$rounds" <<'PY'
import glob, json, statistics, sys
from collections import defaultdict

work, rounds = sys.argv[1], int(sys.argv[2])
names = {"all_reduce": "all_reduce", "all_gather": "all_gather", "all_to_all": "alltoall"}
ratios = defaultdict(list)
print(f"{'round':>5} {'op':>10} {'GiB':>3} {'silirep busbw':>13} {'nccl-tests busbw':>16} {'ratio':>6}")
for r in range(1, rounds + 1):
    (run_file,) = glob.glob(f"{work}/silirep{r}/raw/*/*.json")
    for m in json.load(open(run_file))["measurements"]:
        op, size = m["params"]["op"], m["params"]["bytes"]
        if m["error"] or not m["samples_s"]:
            print(f"{r:>5} {op:>10} silirep failed: {m['error']}")
            continue
        factor = float(m["details"]["bus_bandwidth_factor"])
        ours = m["bytes"] / statistics.median(m["samples_s"]) * factor / 1e9
        theirs = None
        for line in open(f"{work}/nccl-tests-{names[op]}-{r}.txt"):
            cols = line.split()
            if cols and cols[0] == str(size):
                theirs = float(cols[7])  # out-of-place busbw, GB/s (the mean of its iterations)
        if theirs is None:
            print(f"{r:>5} {op:>10} no nccl-tests row for {size} bytes")
            continue
        ratios[(op, size)].append(ours / theirs)
        print(f"{r:>5} {op:>10} {size >> 30:>3} {ours:13.1f} {theirs:16.1f} {ours / theirs:6.3f}")
for (op, size), values in sorted(ratios.items()):
    print(f"{op} {size >> 30} GiB: median ratio {statistics.median(values):.3f} over {len(values)} rounds "
          f"(min {min(values):.3f}, max {max(values):.3f}); > 1 means silirep is faster")
PY
