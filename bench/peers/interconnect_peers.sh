#!/usr/bin/env bash
# silirep's interconnect kernels beside their peers on one multi-GPU machine, in one go:
# nccl-tests (built here against the NCCL of the nvidia-nccl-cu13 wheel, the library silirep
# finds too) for all_reduce, all_gather and alltoall at 1 GiB and 4 GiB on every visible GPU
# (`-g N`, one process), and PyTorch's cross-device and host<->device `copy_`
# (torch_interconnect.py). NVLink multicast (NVLS) stays off in every process.
#
# Usage: bench/peers/interconnect_peers.sh SILIREP_BINARY NCCL_TESTS_SOURCE OUT_DIR SUITE [ARGS...]
#   ARGS go to `silirep measure` (e.g. --warmup-time 0.2 --max-time 0.5).
set -uo pipefail

silirep=${1:?usage: interconnect_peers.sh SILIREP_BINARY NCCL_TESTS_SOURCE OUT_DIR SUITE [ARGS...]}
source_dir=${2:?nccl-tests source folder}
out=${3:?output folder}
suite=${4:?quick, standard or full}
shift 4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

gpus=$(nvidia-smi -L | wc -l)
nvidia-smi topo -m >"$out/topology.txt" 2>&1
nccl=$(python3 -c 'import nvidia.nccl as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])')
python3 -c 'import torch, importlib.metadata as md; print("torch", torch.__version__, "cuda", torch.version.cuda, "nvidia-nccl-cu13", md.version("nvidia-nccl-cu13"))' >"$out/versions.txt"
nvcc --version | tail -2 >>"$out/versions.txt"

# Built in the background while silirep's first measurements run (CPU vs GPU).
build=$(mktemp -d)
"$here/build_nccl_tests.sh" "$source_dir" "$build" >/dev/null 2>"$out/nccl-tests-build.log" &
builder=$!

# The same NCCL for silirep as for nccl-tests (the image may also have another on its loader
# path).
export SILIREP_NCCL_LIB="$nccl/lib/libnccl.so.2"
"$silirep" measure --backend cuda --kernels interconnect --suite "$suite" --out "$out/silirep" "$@" \
    >"$out/silirep.log" 2>&1 || echo "silirep measure failed (see silirep.log)"

wait "$builder" || echo "nccl-tests build failed (see nccl-tests-build.log)"
export LD_LIBRARY_PATH="$nccl/lib:${LD_LIBRARY_PATH:-}"
for test in all_reduce all_gather alltoall; do
    "$build/${test}_perf" -g "$gpus" -b 1G -e 4G -f 4 -d float -w 10 -n 50 >"$out/nccl-tests-$test.txt" 2>&1 ||
        echo "${test}_perf failed"
done

python3 "$here/torch_interconnect.py" --json "$out/torch.json" >"$out/torch.txt" 2>&1 ||
    echo "torch_interconnect.py failed"
