#!/usr/bin/env bash
# The prepared GPU check, for a machine with an NVIDIA GPU and a windtunnel binary
# built here with `cargo build --release --features cuda` (carried over; CUDA loads at run time):
#   WINDTUNNEL_BIN=path/to/windtunnel analysis/gpu_check.sh [OUT_DIR]
# 1. the reference models' tokens/s and GFLOP/s on the cuda backend (MFU = GFLOP/s over the
#    GPU's fp32 peak, printed for an H200's 67 TFLOP/s), next to the PyTorch twin when torch
#    with CUDA is installed; 2. a small sweep on the cuda backend with several models per GPU
#    (--jobs 4), its wall time and its report. Without a driver windtunnel says so and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${WINDTUNNEL_BIN:-${CARGO_TARGET_DIR:-target}/release/windtunnel}"
OUT="${1:-gpu_check}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"
echo "## windtunnel bench, cuda backend"
"$BIN" bench tiny small medium --backend cuda --steps 30 | tee "$OUT/bench_cuda.md"
awk -F'|' 'NR > 2 && $9 + 0 > 0 { printf "%s: MFU %.2f%% of 67 TFLOP/s fp32\n", $2, 100 * $9 / 67000 }' "$OUT/bench_cuda.md"
echo "## PyTorch twin on the GPU"
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  python3 analysis/torch_bench.py tiny small medium --device cuda --steps 30 | tee "$OUT/bench_torch_cuda.md"
else
  echo "torch with CUDA not installed: skipped"
fi
echo "## a sweep on the GPU, 4 models at once"
sed -e 's/^backend = "cpu"/backend = "cuda"/' -e 's/^name = "tiny"/name = "tiny_cuda"/' sweeps/tiny.toml > "$OUT/tiny_cuda.toml"
/usr/bin/time -v "$BIN" run "$OUT/tiny_cuda.toml" --results "$OUT/results" --jobs 4 2>&1 | tail -40 | tee "$OUT/sweep.log"
