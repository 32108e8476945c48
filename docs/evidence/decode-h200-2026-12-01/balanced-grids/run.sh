#!/usr/bin/env bash
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
xz -dc .devbin/h200/silirep.xz > /tmp/silirep && chmod +x /tmp/silirep
mkdir -p $OUT/d
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv > $OUT/d/gpu.txt
timeout 120 /tmp/silirep measure --backend cuda --kernels decode --out /tmp/r1 > $OUT/d/silirep1.log 2>&1
timeout 100 python3 bench/peers/torch_decode.py --batches 1,4,16,64 --json $OUT/d/torch_decode.json > $OUT/d/torch.log 2>&1
timeout 120 /tmp/silirep measure --backend cuda --kernels decode --out /tmp/r2 > $OUT/d/silirep2.log 2>&1
mkdir -p /tmp/all && cp -r /tmp/r1 /tmp/r2 /tmp/all/ 2>/dev/null; tar czf $OUT/d/results.tgz -C /tmp all
