#!/usr/bin/env bash
# A second real-text corpus, one that no sweep of this repository was tuned on, to check that
# the tool's verdicts hold on data it has not seen. Two domains from text a Debian machine with
# Python holds:
#   OUT/docs.jsonl     English prose: the installed packages' documentation (.txt, .md,
#                      changelogs, NEWS, READMEs; gzipped ones unpacked), capped at 40 MB
#   OUT/pycode.jsonl   source code: the system Python's standard library (.py), capped at 40 MB
# and OUT/sweep.toml: sweeps/realtext.toml's grid, recipe and target with these two sources
# (sweep name "systext", results in results/systext). The files depend on what is installed,
# so two machines may differ; the script prints each domain's fingerprint.
#
# Usage: analysis/make_system_corpus.sh [OUT_DIR]     (default: data/systext)
#   cargo run --release -- run data/systext/sweep.toml
#   cargo run --release -- check results/systext --width 128 --depth 3 --tokens-per-param 30
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/systext}"
mkdir -p "$out"
python3 - "$out" <<'PY'
import glob, os, sys, sysconfig
sys.path.insert(0, "analysis")
from jsonl_corpus import walk, write
out = sys.argv[1]

# The system Python's standard library (the Debian package's, /usr/lib/python3.X), else the
# running interpreter's.
system = [d for d in sorted(glob.glob("/usr/lib/python3.*")) if os.path.isfile(os.path.join(d, "os.py"))]
stdlib = system[-1] if system else sysconfig.get_paths()["stdlib"]
docs = walk("/usr/share/doc", lambda f: f.endswith((".txt", ".md")) or f.startswith(("changelog", "NEWS", "README")))
write(out, "docs", docs, 40e6, 1)
write(out, "pycode", walk(stdlib, lambda f: f.endswith(".py")), 40e6, 1)
PY
# The realtext grid with these sources: same sizes, tokens, schedule, target and fits.
sed -e 's/^name = "realtext"/name = "systext"/' \
    -e 's/^name = "prose"/name = "docs"/' -e "s#data/realtext/prose.jsonl#$out/docs.jsonl#" \
    -e 's/^name = "code"/name = "pycode"/' -e "s#data/realtext/code.jsonl#$out/pycode.jsonl#" \
    -e 's/{ prose = 0.4, code = 0.6 }/{ docs = 0.4, pycode = 0.6 }/' \
    sweeps/realtext.toml | sed -e '1,/^$/d' > "$out/sweep.body"
# realtext's header comment names its own corpus and commands; this file gets its own.
{
    echo "# realtext's grid, recipe and target on a second corpus (analysis/make_system_corpus.sh):"
    echo "# the installed packages' documentation and the system Python's standard library."
    echo "#   windtunnel run $out/sweep.toml"
    echo "#   windtunnel check results/systext --width 128 --depth 3 --tokens-per-param 30"
    echo "# The comments below are realtext's and speak of its corpus (sizes, tokens drawn)."
    echo
    cat "$out/sweep.body"
} > "$out/sweep.toml"
rm "$out/sweep.body"
grep -q 'name = "systext"' "$out/sweep.toml" && grep -q 'docs = 0.4, pycode = 0.6' "$out/sweep.toml" ||
    { echo "make_system_corpus: sweeps/realtext.toml changed shape; edit $out/sweep.toml by hand" >&2; exit 1; }
echo "wrote $out/docs.jsonl, $out/pycode.jsonl and $out/sweep.toml"
