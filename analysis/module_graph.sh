#!/usr/bin/env bash
# Lists, for each top-level module of the crate, the other crate modules it imports
# (grep-based: `crate::X`, and `windtunnel::X` in src/main.rs), then flags every import
# that points up the layers. Why grep and not `cargo modules`: it needs no extra tool and
# reads the same text a reviewer reads. Exit status 1 when an upward import exists.
# Usage: analysis/module_graph.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

# Layer order, lowest first; leaves (usable by anyone) have layer 0.
declare -A layer=(
  [rng]=0 [flops]=0 [kernels]=0 [backend]=0 [median]=0
  [spec]=1 [data]=2 [model]=3 [train]=4 [runner]=5 [store]=6 [fit]=7 [report]=8 [app]=9
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
