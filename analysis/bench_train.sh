#!/usr/bin/env bash
# Training throughput of windtunnel (burn flex) and its PyTorch twin, side by side, one thread
# each (the grid runs one single-threaded job per core). Needs a release build and, for the
# PyTorch half, `pip install torch` (skipped with a message if torch is missing).
#   analysis/bench_train.sh [tiny small medium]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${WINDTUNNEL_BIN:-${CARGO_TARGET_DIR:-target}/release/windtunnel}"
[ -x "$BIN" ] || cargo build --release
models=("${@:-tiny small medium}")
echo "## windtunnel (burn 0.21 flex, RAYON_NUM_THREADS=1)"
RAYON_NUM_THREADS=1 "$BIN" bench ${models[@]} 2>/dev/null
echo
echo "## PyTorch eager (1 thread)"
if python3 -c "import torch" 2>/dev/null; then
  python3 analysis/torch_bench.py ${models[@]} --threads 1
else
  echo "torch not installed: pip install torch"
fi
