#!/usr/bin/env bash
# The loss-curve law's length backtest against expected curves rather than one seed's: trains
# sweeps/curve_law.toml under seeds 0, 1 and 2 (the two extra copies are written beside their
# results as RESULTS/curve_law_seed1.toml and curve_law_seed2.toml, each under its own name),
# then runs `curve-holdout` on the three splits (fit two run lengths, predict the third's whole
# curves) on each run's mean curve over the seeds, and on seed 0 alone. Finished runs are kept:
# a second call only fits. About 2 minutes of training per seed on 2 cores.
# Builds nothing itself: uses $WINDTUNNEL_BIN, else target/release/windtunnel.
#
# Usage: analysis/curve_seeds.sh [RESULTS]   (default: results)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
results="${1:-results}"
wt="${WINDTUNNEL_BIN:-$root/target/release/windtunnel}"
[ -x "$wt" ] || { echo "no binary at $wt: cargo build --release, or set WINDTUNNEL_BIN" >&2; exit 1; }
mkdir -p "$results"
"$wt" run "$root/sweeps/curve_law.toml" --results "$results" --no-fit
reps=()
for s in 1 2; do
    copy="$results/curve_law_seed$s.toml"
    sed -e "s/^seed = 0$/seed = $s/" -e "s/^name = \"curve_law\"$/name = \"curve_law_seed$s\"/" \
        "$root/sweeps/curve_law.toml" > "$copy"
    grep -q "^seed = $s$" "$copy" || { echo "$copy: could not set the seed" >&2; exit 1; }
    "$wt" run "$copy" --results "$results" --no-fit
    reps+=("$results/curve_law_seed$s")
done
for split in "5,10 20" "5,20 10" "10,20 5"; do
    set -- $split
    one=$("$wt" curve-holdout "$results/curve_law" --fit "$1" --predict "$2" | grep -F '**all**')
    three=$("$wt" curve-holdout "$results/curve_law" --fit "$1" --predict "$2" \
        --replicates "$(IFS=,; echo "${reps[*]}")" | grep -F '**all**')
    echo "fit $1 predict $2"
    echo "  seed 0:          $one"
    echo "  mean of 3 seeds: $three"
done
