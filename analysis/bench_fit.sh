#!/usr/bin/env bash
# Side-by-side speed of the approach-3 fit: `windtunnel bench-fit` (full
# 4,500-start grid + 1,000 bootstrap refits) against Epoch's scipy recipe
# (L-BFGS-B, numerical gradients), timed on K starts and extrapolated to the
# grid. Builds nothing itself: uses $WINDTUNNEL_BIN, else
# target/release/windtunnel, else `cargo run --release --`.
#
# Usage: analysis/bench_fit.sh [CSV] [K]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
csv="${1:-$root/../shared/reference-data/chinchilla/svg_extracted_data.csv}"
k="${2:-20}"
[ -f "$csv" ] || { echo "no Chinchilla CSV found (pass its path)" >&2; exit 1; }

if [ -n "${WINDTUNNEL_BIN:-}" ]; then
  wt=("$WINDTUNNEL_BIN")
elif [ -x "$root/target/release/windtunnel" ]; then
  wt=("$root/target/release/windtunnel")
else
  wt=(cargo run --quiet --release --manifest-path "$root/Cargo.toml" --)
fi

ours="$("${wt[@]}" bench-fit "$csv")"
echo "$ours"
echo
theirs="$(python3 "$here/scipy_chinchilla.py" "$csv" --k "$k")"
echo "$theirs"
echo

grid_s="$(awk '$1 == "grid" {print $2; exit}' <<<"$ours")"
total_s="$(awk '$1 == "total" {print $2; exit}' <<<"$ours")"
scipy_grid_s="$(awk '$1 == "scipy_full_grid_seconds" {print $2}' <<<"$theirs")"
awk -v g="$grid_s" -v t="$total_s" -v s="$scipy_grid_s" 'BEGIN {
  printf "full grid: windtunnel %.3f s vs scipy %.1f s (extrapolated)  ->  %.0fx faster\n", g, s, s / g
  printf "windtunnel grid + 1000 bootstrap refits: %.3f s (scipy would need %.1f s for the grid alone)\n", t, s
}'
