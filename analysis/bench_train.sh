#!/usr/bin/env bash
# Training throughput of windtunnel (burn flex) and its PyTorch twin, side by side, one thread
# each (the grid runs one single-threaded job per core). Needs a release build and, for the
# PyTorch half, `pip install torch` (skipped with a message if torch is missing).
#   analysis/bench_train.sh [tiny small medium]
#   REPEAT=5 analysis/bench_train.sh small medium   # alternate the two 5 times, report medians
# Shared or virtual machines drift by 10-30% from minute to minute; alternating the two
# programs and taking medians keeps that drift out of the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${WINDTUNNEL_BIN:-${CARGO_TARGET_DIR:-target}/release/windtunnel}"
[ -x "$BIN" ] || cargo build --release
models=("${@:-tiny small medium}")
REPEAT="${REPEAT:-1}"
has_torch=1
python3 -c "import torch" 2>/dev/null || has_torch=0
log=$(mktemp)
for i in $(seq "$REPEAT"); do
  echo "## windtunnel (burn 0.21 flex, RAYON_NUM_THREADS=1), round $i"
  RAYON_NUM_THREADS=1 "$BIN" bench ${models[@]} 2>/dev/null | tee -a "$log.wt"
  echo
  echo "## PyTorch eager (1 thread), round $i"
  if [ "$has_torch" = 1 ]; then
    python3 analysis/torch_bench.py ${models[@]} --threads 1 | tee -a "$log.pt"
  else
    echo "torch not installed: pip install torch"
  fi
  echo
done
if [ "$REPEAT" -gt 1 ] && [ "$has_torch" = 1 ]; then
  echo "## medians of $REPEAT alternating rounds (tokens/s)"
  python3 - "$log.wt" "$log.pt" <<'EOF'
import statistics, sys
def read(path):
    d = {}
    for line in open(path):
        c = [x.strip() for x in line.strip().strip('|').split('|')]
        if len(c) >= 7 and c[6].replace('.', '').isdigit():
            d.setdefault(c[0], []).append(float(c[6]))
    return d
wt, pt = read(sys.argv[1]), read(sys.argv[2])
print("| model | windtunnel | PyTorch | ratio | windtunnel runs | PyTorch runs |\n|---|---|---|---|---|---|")
for m in wt:
    a, b = statistics.median(wt[m]), statistics.median(pt.get(m, [float('nan')]))
    print(f"| {m} | {a:.0f} | {b:.0f} | {a / b:.2f}x | {', '.join(f'{x:.0f}' for x in wt[m])} | {', '.join(f'{x:.0f}' for x in pt.get(m, []))} |")
EOF
fi
rm -f "$log" "$log.wt" "$log.pt"
