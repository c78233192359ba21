#!/usr/bin/env bash
# Measures what `design --continue` is for: does its proposal, once trained, narrow the
# target's N_opt interval more than the same FLOPs spent on a uniform extension of the grid?
# Trains half of a sweep (shard K of 2), asks `design --continue` for a proposal and the
# same-FLOPs uniform baseline (--uniform-out), trains each into its own copy of the half-trained
# results folder, and prints the N_opt and loss intervals of the three fits. Real training:
# about 5 minutes on 2 cores for the quickstart.
# Builds nothing itself: uses $WINDTUNNEL_BIN, else target/release/windtunnel.
#
# Usage: analysis/continue_check.sh [SWEEP] [SHARD] [WORKDIR]
#        (defaults: sweeps/quickstart.toml, 0, a new temporary folder)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
sweep="${1:-$root/sweeps/quickstart.toml}"
shard="${2:-0}"
work="${3:-$(mktemp -d)}"
wt="${WINDTUNNEL_BIN:-$root/target/release/windtunnel}"
[ -x "$wt" ] || { echo "no binary at $wt: cargo build --release, or set WINDTUNNEL_BIN" >&2; exit 1; }
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$sweep" | head -1)
mkdir -p "$work"
echo "work folder: $work"

"$wt" run "$sweep" --shard "$shard/2" --results "$work/half" > "$work/half.log" 2>&1
"$wt" design --continue "$work/half/$name" --out "$work/proposal.toml" --uniform-out "$work/uniform.toml" \
  | tee "$work/design.log" | sed -n '/expected 95% spreads/,/^wrote/p' | grep -v '^wrote'
for arm in proposal uniform; do
  mkdir -p "$work/$arm"
  cp -a "$work/half/$name" "$work/$arm/"
  "$wt" run "$work/$arm.toml" --results "$work/$arm" > "$work/$arm.log" 2>&1
done

echo "trained (fit.json of each folder; N_opt and loss are 95% bootstrap / prediction intervals):"
echo "| | runs | N_opt interval | N_opt spread | loss interval |"
echo "|---|---|---|---|---|"
for arm in half proposal uniform; do
  python3 - "$arm" "$work/$arm/$name/fit.json" <<'PY'
import json, sys
arm, path = sys.argv[1], sys.argv[2]
f = json.load(open(path))
n, l = f["intervals"]["n_opt"], f["intervals"]["loss"]
print(f"| {arm} | {f['n_points']} | [{n['lo']:.4g}, {n['hi']:.4g}] | {n['hi'] / n['lo']:.1f}x | [{l['lo']:.4f}, {l['hi']:.4f}] |")
PY
done
