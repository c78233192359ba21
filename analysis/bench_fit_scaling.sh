#!/usr/bin/env bash
# How the fit's cost grows with points and the fit of a 100-run sweep with
# every evaluation. Writes synthetic CSVs from a known law plus noise, times
# `windtunnel fit` on each (1,000 bootstrap resamples, backtests on: the defaults), and prints
# the wall time beside the recovered law, so speed is never reported without accuracy.
#
#   law:    L = 1.8 + 480/N^0.35 + 2100/D^0.37, times exp(0.01 z), z ~ N(0, 1)
#   points: N log-uniform in [1e6, 1e9], tokens per parameter log-uniform in [2, 200];
#           every row its own run (no run_id column: every row is a final point)
#   sweep:  100 runs (10 sizes x 10 token budgets), 100 evaluations each (10,000 rows),
#           run_id and is_final columns: only the last evaluation of a run is final
#   repeat1m: an undetermined verdict on a million rows (law 1.8 + 400/N^0.34 + 400/D^0.28):
#           20 points (N 1e6 to 1.8e6, 10 to 20 tokens per parameter) x 50,000 copies, each
#           with its own 1% noise, fitted with --target-flops 4e17 (1,000x the largest run), so
#           the verdict searches runs to suggest (issue 38: over 300 s before the search scored
#           distinct points once)
#
# Usage: analysis/bench_fit_scaling.sh [ROWS ...]   (default: 1000 10000 100000 1000000 sweep repeat1m)
# Builds nothing itself: uses $WINDTUNNEL_BIN, else target/release/windtunnel. CSVs are
# cached in $BENCH_DIR (default: a folder under ${TMPDIR:-/tmp}).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
wt="${WINDTUNNEL_BIN:-$root/target/release/windtunnel}"
[ -x "$wt" ] || { echo "no windtunnel binary at $wt (cargo build --release, or set WINDTUNNEL_BIN)" >&2; exit 1; }
dir="${BENCH_DIR:-${TMPDIR:-/tmp}/windtunnel-bench-fit}"
mkdir -p "$dir"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(1000 10000 100000 1000000 sweep repeat1m)

gen() { # gen ROWS|sweep FILE
  python3 - "$1" "$2" <<'PY'
import math, random, sys
rows, out = sys.argv[1], sys.argv[2]
rng = random.Random(7)
law = lambda n, d: 1.8 + 480.0 / n ** 0.35 + 2100.0 / d ** 0.37
with open(out + ".tmp", "w") as f:
    if rows == "repeat1m":
        f.write("params,tokens,loss\n")
        pts = [(n, n * t) for n in (1.0e6, 1.2e6, 1.5e6, 1.8e6) for t in (10, 12, 14, 17, 20)]
        for _ in range(50000):
            for n, d in pts:
                l = (1.8 + 400.0 / n ** 0.34 + 400.0 / d ** 0.28) * math.exp(0.01 * rng.gauss(0, 1))
                f.write(f"{n:.6e},{d:.6e},{l:.6f}\n")
    elif rows == "sweep":
        f.write("run_id,params,tokens,loss,is_final\n")
        for i in range(10):
            n = 1e6 * 1000 ** (i / 9)
            for j in range(10):
                d_final = n * 2 * 100 ** (j / 9)
                for k in range(1, 101):
                    d = d_final * k / 100
                    l = law(n, d) * math.exp(0.01 * rng.gauss(0, 1))
                    f.write(f"r{i}-{j},{n:.6e},{d:.6e},{l:.6f},{'true' if k == 100 else 'false'}\n")
    else:
        f.write("params,tokens,loss\n")
        for _ in range(int(rows)):
            n = 1e6 * 1000 ** rng.random()
            d = n * 2 * 100 ** rng.random()
            l = law(n, d) * math.exp(0.01 * rng.gauss(0, 1))
            f.write(f"{n:.6e},{d:.6e},{l:.6f}\n")
import os
os.replace(out + ".tmp", out)
PY
}

# Wall time on a shared machine says little, so CPU time (user + sys, all threads) is printed
# beside it: on an idle machine with T cores the wall time is about cpu_s / T.
printf "%-9s %8s %8s  %s\n" "case" "wall_s" "cpu_s" "fitted (true: E 1.8, A 480, B 2100, alpha 0.35, beta 0.37)"
for c in "${cases[@]}"; do
  csv="$dir/fit_$c.csv"
  [ -f "$csv" ] || gen "$c" "$csv"
  extra=()
  [ "$c" = repeat1m ] && extra=(--target-flops 4e17)
  /usr/bin/time -o "$dir/fit_$c.time" -f "%e %U %S" "$wt" fit "$csv" --out "$dir/fit_$c.json" "${extra[@]}" >/dev/null 2>"$dir/fit_$c.log" \
    || { echo "$c: fit failed, see $dir/fit_$c.log" >&2; exit 1; }
  read -r wall user sys <"$dir/fit_$c.time"
  law="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); p=r["params"]; v=r.get("verdict") or {}; print("E %.4f A %.1f B %.1f alpha %.4f beta %.4f; %d points, %d/%d bootstrap; verdict %s" % (p["E"], p["A"], p["B"], p["alpha"], p["beta"], r["n_points"], r["bootstrap_ok"], r["bootstrap_resamples"], "determined" if v.get("determined") else "not determined, %d runs suggested" % len(v.get("suggest", []))))' "$dir/fit_$c.json")"
  printf "%-9s %8.2f %8.2f  %s\n" "$c" "$wall" "$(echo "$user + $sys" | bc -l)" "$law"
done
