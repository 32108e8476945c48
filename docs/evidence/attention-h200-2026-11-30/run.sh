#!/bin/bash
# Side by side on one H200: PyTorch SDPA (before and after), silirep's fused attention
# (persistent Hopper kernel; the non-persistent one it replaces as the comparison, or as the
# fallback if the persistent one fails), non-causal and causal.
D=.devbin/attn
xz -dc $D/silirep.xz > /tmp/silirep && xz -dc $D/silirep-base.xz > /tmp/silirep-base && chmod +x /tmp/silirep /tmp/silirep-base
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:$LD_LIBRARY_PATH
mkdir -p /tmp/o
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee /tmp/o/nvidia-smi.txt
run() { local name=$1; shift; echo "=== $name: $*" | tee /tmp/o/$name.log; ( time timeout "$@" ) >> /tmp/o/$name.log 2>&1; echo "rc=$?" >> /tmp/o/$name.log; grep -E "rc=|attention|layer|error|fail|real" /tmp/o/$name.log | grep -v "^===" ; }
run torch_before 80 python3 $D/torch_cuda_baseline.py --only attention --json /tmp/o/torch_before.json
run silirep_fused 100 /tmp/silirep measure --backend cuda --kernels attention_fused --sizes 4096,8192 --out /tmp/o/r
if [ "$(grep -cE '^attention_fused .* ok$' /tmp/o/silirep_fused.log)" = 4 ]; then
  run silirep_fused_causal 80 /tmp/silirep measure --backend cuda --kernels attention_fused --sizes 4096,8192 --causal --out /tmp/o/r
  run silirep_layer 40 /tmp/silirep measure --backend cuda --kernels layer_forward --sizes 512 --warmup-time 0.3 --max-time 0.5 --out /tmp/o/r
  run base_fused 60 /tmp/silirep-base measure --backend cuda --kernels attention_fused --sizes 4096,8192 --warmup-time 0.5 --max-time 1.5 --out /tmp/o/rb
else
  run base_fused 70 /tmp/silirep-base measure --backend cuda --kernels attention_fused --sizes 4096,8192 --out /tmp/o/rb
  run base_fused_causal 60 /tmp/silirep-base measure --backend cuda --kernels attention_fused --sizes 4096,8192 --causal --out /tmp/o/rb
fi
run torch_after 80 python3 $D/torch_cuda_baseline.py --only attention --json /tmp/o/torch_after.json
tar czf $OUT/run2.tgz -C /tmp o
