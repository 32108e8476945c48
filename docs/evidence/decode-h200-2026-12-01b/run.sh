#!/usr/bin/env bash
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
xz -dc .devbin/final/silirep.xz > /tmp/silirep && chmod +x /tmp/silirep
mkdir -p $OUT/d /tmp/all
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv > /tmp/all/gpu.txt
date -u +%FT%TZ > /tmp/all/start.txt
timeout 150 /tmp/silirep measure --backend cuda --kernels decode --out /tmp/all/r1 > /tmp/all/silirep1.log 2>&1
timeout 100 python3 bench/peers/torch_decode.py --batches 1,4,16,64 --json /tmp/all/torch_decode.json > /tmp/all/torch.log 2>&1
timeout 150 /tmp/silirep measure --backend cuda --kernels decode --out /tmp/all/r2 > /tmp/all/silirep2.log 2>&1
timeout 60 /tmp/silirep measure --backend cuda --kernels bandwidth_read --sizes 4GiB --out /tmp/all/r3 > /tmp/all/read.log 2>&1
date -u +%FT%TZ > /tmp/all/end.txt
grep -h "decode  \|bandwidth_read" /tmp/all/*.log; grep -h "best" /tmp/all/torch.log
tar czf $OUT/d/results.tgz -C /tmp all
