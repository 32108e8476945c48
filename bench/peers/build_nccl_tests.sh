#!/usr/bin/env bash
# Builds nccl-tests against the NCCL of the nvidia-nccl-cu13 wheel (the library silirep finds
# too), for sm_90, without MPI. nccl-tests links -lnccl and includes nccl.h, and the wheel has
# libnccl.so.2 only, so the build gets an NCCL_HOME of links.
#
# Usage: bench/peers/build_nccl_tests.sh NCCL_TESTS_SOURCE BUILD_DIR
#   prints the wheel's NCCL folder (its lib/ holds libnccl.so.2) on success.
set -euo pipefail

source_dir=${1:?usage: build_nccl_tests.sh NCCL_TESTS_SOURCE BUILD_DIR}
build=${2:?build folder}
nccl=$(python3 -c 'import nvidia.nccl as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])')
home=$(mktemp -d)
mkdir -p "$home/lib" "$build"
ln -s "$nccl/include" "$home/include"
ln -s "$nccl/lib/libnccl.so.2" "$home/lib/libnccl.so"
ln -s "$nccl/lib/libnccl.so.2" "$home/lib/libnccl.so.2"
cuda_home=$(dirname "$(dirname "$(command -v nvcc)")")
make -C "$source_dir" -j"$(nproc)" MPI=0 CUDA_HOME="$cuda_home" NCCL_HOME="$home" \
    NVCC_GENCODE="-gencode=arch=compute_90,code=sm_90" BUILDDIR="$build" >&2
echo "$nccl"
