#!/usr/bin/env bash
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
xz -dc .devbin/h200/silirep.xz > /tmp/silirep && chmod +x /tmp/silirep
mkdir -p $OUT/h
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv > $OUT/h/gpu.txt
python3 -c 'import torch, importlib.metadata as md; print("torch", torch.__version__, "cuda", torch.version.cuda, "nvidia-nccl-cu13", md.version("nvidia-nccl-cu13"))' >> $OUT/h/gpu.txt
timeout 170 bench/peers/collective_rounds.sh /tmp/silirep .devbin/x2/nccl-tests 3 /tmp/cr > $OUT/h/collective-rounds.txt 2>&1
tar czf $OUT/h/cr.tgz -C /tmp cr
export CUDA_VISIBLE_DEVICES=0
timeout 240 bench/peers/cuda_bandwidth_rounds.sh /tmp/silirep 3 /tmp/bwr > $OUT/h/bandwidth-rounds.txt 2>&1
tar czf $OUT/h/bwr.tgz -C /tmp bwr
timeout 150 bench/peers/cuda_gemm_rounds.sh /tmp/silirep 4 /tmp/gr > $OUT/h/gemm-rounds.txt 2>&1
tar czf $OUT/h/gr.tgz -C /tmp gr
