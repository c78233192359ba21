#!/usr/bin/env bash
# A third real-text corpus, for checking the tool on data no sweep of this repository was
# tuned on. Two domains from files a Debian machine holds:
#   OUT/cheaders.jsonl  C headers (/usr/include, .h), capped at 40 MB
#   OUT/perl.jsonl      Perl modules and their POD documentation (/usr/share/perl,
#                       /usr/lib/x86_64-linux-gnu/perl: .pm, .pod), capped at 40 MB
# and OUT/sweep.toml: sweeps/realtext.toml's grid, recipe and target with these two sources
# mixed half and half (sweep name "headertext", results in results/headertext). The files
# depend on what is installed, so two machines may differ; the script prints each domain's
# fingerprint.
#
# Usage: analysis/make_header_corpus.sh [OUT_DIR]     (default: data/headertext)
#   cargo run --release -- run data/headertext/sweep.toml
#   cargo run --release -- check results/headertext --width 128 --depth 3 --tokens-per-param 30
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/headertext}"
mkdir -p "$out"
python3 - "$out" <<'PY'
import os, sys
sys.path.insert(0, "analysis")
from jsonl_corpus import walk, write
out = sys.argv[1]

perl = lambda f: f.endswith((".pm", ".pod"))
write(out, "cheaders", walk("/usr/include", lambda f: f.endswith(".h")), 40e6, 2)
write(out, "perl", walk("/usr/share/perl", perl) + walk("/usr/lib/x86_64-linux-gnu/perl", perl), 40e6, 2)
PY
{
    echo "# realtext's grid, recipe and target on a third corpus (analysis/make_header_corpus.sh):"
    echo "# C headers and Perl modules, half and half."
    echo "#   windtunnel run $out/sweep.toml"
    echo "#   windtunnel check results/headertext --width 128 --depth 3 --tokens-per-param 30"
    echo "# The comments below are realtext's and speak of its corpus (sizes, tokens drawn)."
    echo
    sed -e 's/^name = "realtext"/name = "headertext"/' \
        -e 's/^name = "prose"/name = "perl"/' -e "s#data/realtext/prose.jsonl#$out/perl.jsonl#" \
        -e 's/^name = "code"/name = "cheaders"/' -e "s#data/realtext/code.jsonl#$out/cheaders.jsonl#" \
        -e 's/{ prose = 0.4, code = 0.6 }/{ perl = 0.5, cheaders = 0.5 }/' \
        sweeps/realtext.toml | sed -e '1,/^$/d'
} > "$out/sweep.toml"
grep -q 'name = "headertext"' "$out/sweep.toml" && grep -q 'perl = 0.5, cheaders = 0.5' "$out/sweep.toml" ||
    { echo "make_header_corpus: sweeps/realtext.toml changed shape; edit $out/sweep.toml by hand" >&2; exit 1; }
echo "wrote $out/cheaders.jsonl, $out/perl.jsonl and $out/sweep.toml"
