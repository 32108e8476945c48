#!/usr/bin/env bash
# TCP over localhost: silirep's link kernels against iperf3 on the same machine, alternating.
# usage: bench/peers/tcp_link_vs_iperf3.sh SILIREP_BINARY [ROUNDS] [OUT_DIR]
# iperf3 must be on PATH (Debian: apt-get install iperf3; or unpack its .deb and set
# LD_LIBRARY_PATH). Both sides write 128 KiB (iperf3's default TCP block) on one stream, and on
# four streams, in both directions; iperf3 runs 5 s per test, silirep its standard timing.
set -euo pipefail
bin=${1:?silirep binary}
rounds=${2:-2}
out=${3:-/tmp/tcp-peer}
mkdir -p "$out"
iperf3 -s -p 5399 -D --logfile "$out/iperf3-server.log"
"$bin" link serve --listen 127.0.0.1:5398 > "$out/silirep-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; pkill -f "iperf3 -s -p 5399" || true' EXIT
sleep 1
for r in $(seq 1 "$rounds"); do
  for args in "" "-R" "-P 4" "-P 4 -R"; do
    tag=$(echo "r$r $args" | tr -d ' -')
    iperf3 -c 127.0.0.1 -p 5399 -t 5 -J $args > "$out/iperf3-$tag.json"
  done
  "$bin" measure --backend cpu --kernels tcp_to_peer,tcp_from_peer --sizes 128KiB \
      --peer 127.0.0.1:5398 --label "tcp-peer round $r" --out "$out/silirep-r$r" 2>&1 | tail -6
done
python3 - "$out" <<'PY'
import json, glob, statistics, sys
out = sys.argv[1]
print("iperf3 (sum of streams, receiver side):")
for f in sorted(glob.glob(f"{out}/iperf3-*.json")):
    d = json.load(open(f))
    bps = d["end"]["sum_received"]["bits_per_second"] / 8
    streams = d["start"]["test_start"]["num_streams"]
    rev = d["start"]["test_start"]["reverse"]
    print(f"  {f.split('/')[-1]:28s} streams={streams} reverse={rev} {bps/1e9:6.2f} GB/s")
print("silirep (median of samples):")
for f in sorted(glob.glob(f"{out}/silirep-*/raw/*/*.json")):
    d = json.load(open(f))
    for m in d["measurements"]:
        if not m["samples_s"]:
            print("  failed:", m["error"]); continue
        p = m["params"]
        print(f"  {f.split('/')[-4]:14s} {m['kernel']:18s} streams={p['streams']} "
              f"{p['bytes']/statistics.median(m['samples_s'])/1e9:6.2f} GB/s "
              f"verified={m['verification']['status']}")
PY
