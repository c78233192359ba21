#!/usr/bin/env bash
# Measures what `design` (from scratch, before any training) is for: at the same budget as a
# hand-written grid, does the grid it designs, once trained, leave the target's N_opt interval
# narrower? Runs `plan --precision` and `design` at the baseline sweep's cost (the baseline's
# own recipe and target), trains both grids and prints, for each, the simulated N_opt spread
# beside the one the trained fit reports. Real training: about 3 minutes on 2 cores for
# sweeps/handgrid.toml.
# Builds nothing itself: uses $WINDTUNNEL_BIN, else target/release/windtunnel.
#
# Usage: [PRIOR=fit.json] analysis/design_check.sh [SWEEP] [WORKDIR]
#        (defaults: sweeps/handgrid.toml, a new temporary folder; PRIOR: a pilot sweep's
#        fit.json as the simulator's prior, passed to plan and design as --prior)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
sweep="${1:-$root/sweeps/handgrid.toml}"
work="${2:-$(mktemp -d)}"
wt="${WINDTUNNEL_BIN:-$root/target/release/windtunnel}"
[ -x "$wt" ] || { echo "no binary at $wt: cargo build --release, or set WINDTUNNEL_BIN" >&2; exit 1; }
sweep_name() { sed -n '/^\[sweep\]/,/^\[/s/^name *= *"\(.*\)".*/\1/p' "$1" | head -1; }
target=$(sed -n '/^\[target\]/,/^\[/s/^flops *= *\([0-9.eE+-]*\).*/\1/p' "$sweep" | head -1)
[ -n "$target" ] || { echo "$sweep has no [target] flops" >&2; exit 1; }
prior=()
[ -n "${PRIOR:-}" ] && prior=(--prior "$PRIOR")
mkdir -p "$work"
echo "work folder: $work"

# The baseline's training FLOPs, as plan counts them (the design budget).
budget=$("$wt" plan "$sweep" --results "$work/none" | sed -n 's/.*pending: \([0-9.eE+-]*\) training FLOPs.*/\1/p')
echo "baseline $sweep: $budget training FLOPs, target $target FLOPs"
"$wt" design "${prior[@]}" --budget-flops "$budget" --target-flops "$target" --from "$sweep" --out "$work/designed.toml" \
  | tee "$work/design.log" | sed -n '/^| sizes/,/^wrote/p'
sim() { "$wt" plan "$1" --precision "${prior[@]}" --results "$work/none" | sed -n 's/^| N_opt (parameters) | \([0-9.]*\)x.*/\1/p'; }
echo
echo "| grid | runs | training FLOPs | simulated N_opt spread (plan --precision) | trained N_opt interval | trained spread |"
echo "|---|---|---|---|---|---|"
for arm in baseline designed; do
  file="$sweep"; [ "$arm" = designed ] && file="$work/designed.toml"
  arm_name=$(sweep_name "$file")
  flops=$("$wt" plan "$file" --results "$work/none" | sed -n 's/.*pending: \([0-9.eE+-]*\) training FLOPs.*/\1/p')
  s=$(sim "$file")
  "$wt" run "$file" --results "$work/$arm" > "$work/$arm.log" 2>&1
  python3 - "$arm" "$flops" "$s" "$work/$arm/$arm_name/fit.json" <<'PY'
import json, sys
arm, flops, sim, path = sys.argv[1:5]
f = json.load(open(path))
n = f["intervals"]["n_opt"]
print(f"| {arm} | {f['n_points']} | {float(flops):.3e} | {float(sim):.1f}x | [{n['lo']:.4g}, {n['hi']:.4g}] | {n['hi'] / n['lo']:.1f}x |")
PY
done
