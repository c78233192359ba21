#!/usr/bin/env bash
# Lists, for each top-level module of the crate, the other crate modules it imports
# (grep-based: `crate::X`, and `windtunnel::X` in src/main.rs), then flags every import
# that points up the layers. Why grep and not `cargo modules`: it needs no extra tool and
# reads the same text a reviewer reads. Exit status 1 when an upward import exists.
# Usage: analysis/module_graph.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

# Layer order for imports, lowest first; leaves (usable by anyone) have layer 0. The data flow
# is spec → data → model → train → runner → store → fit → report → app, and imports follow it
# with two placements a reader should know: `fit` is pure math that imports nothing of the
# crate but `rng`, so it is a leaf (spec checks law names against it, store converts frames
# into its observations); and `store` is the on-disk format shared by the writers (train,
# runner) and the readers (report, app), so it sits below both.
declare -A layer=(
  [rng]=0 [human]=0 [flops]=0 [kernels]=0 [backend]=0 [fit]=0
  [spec]=1 [data]=2 [model]=3 [store]=4 [train]=5 [runner]=6 [report]=7 [app]=8
)

modules=$(ls src | sed -n 's/\.rs$//p; /\./!p' | grep -vx 'lib\|main' | sort -u)
bad=0
for m in $modules; do
  if [ -d "src/$m" ]; then files=$(find "src/$m" -name '*.rs'); else files="src/$m.rs"; fi
  [ -f "src/$m.rs" ] && files="$files src/$m.rs"
  deps=$(grep -ohE 'crate::[a-z_]+' $files 2>/dev/null | sed 's/crate:://' | sort -u | grep -vx "$m" || true)
  echo "$m -> $(echo $deps)"
  for d in $deps; do
    lm=${layer[$m]:-?}; ld=${layer[$d]:-?}
    if [ "$lm" = "?" ] || [ "$ld" = "?" ]; then
      # lib.rs items (UserError, PROCESS_START) are crate-root leaves, not modules.
      [ -d "src/$d" ] || [ -f "src/$d.rs" ] || continue
      echo "  UNKNOWN LAYER: $m -> $d"; bad=1
    elif [ "$ld" -ne 0 ] && [ "$ld" -ge "$lm" ]; then
      echo "  UPWARD: $m -> $d"; bad=1
    fi
  done
done
exit $bad
