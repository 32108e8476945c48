#!/usr/bin/env bash
# Smoke run of the final tree: every reworked path verified on the H200.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
xz -dc .devbin/h200/silirep.xz > /tmp/silirep && chmod +x /tmp/silirep
mkdir -p $OUT/s
S="--warmup-time 0.2 --max-time 0.5"
timeout 100 /tmp/silirep measure --backend cuda --suite quick $S --out /tmp/s > $OUT/s/quick.log 2>&1
timeout 60 /tmp/silirep measure --backend cuda --kernels layer_forward,layer_backward --sizes 512 $S --out /tmp/s > $OUT/s/layer.log 2>&1
timeout 60 /tmp/silirep measure --backend cuda --kernels bandwidth_copy,bandwidth_read,bandwidth_write --sizes 1GiB,8GiB $S --out /tmp/s > $OUT/s/bw.log 2>&1
timeout 90 /tmp/silirep measure --backend cuda --kernels decode --sizes 1,16 $S --out /tmp/s > $OUT/s/decode.log 2>&1
timeout 60 /tmp/silirep measure --backend cuda --kernels attention_fused --sizes 4096 --causal $S --out /tmp/s > $OUT/s/attn.log 2>&1
tar czf $OUT/s/results.tgz -C /tmp s
