#!/usr/bin/env bash
# Builds the two real-text domains of sweeps/realtext.toml from text that every machine which
# has built this project already holds: the sources of the crates in Cargo.lock, as cargo
# unpacked them into its registry.
#   data/realtext/prose.jsonl  English technical prose: the crates' Markdown (READMEs, docs)
#   data/realtext/code.jsonl   source code: the crates' Rust files (capped, see CODE_MB)
# One JSON object per file ({"text": ...}), files in a seeded shuffle so that the held-out
# validation chunks (the end of each domain's stream) mix many crates instead of the last one
# alphabetically. The selection depends only on Cargo.lock and the crates' published contents,
# so every machine builds the same corpus (the script prints a fingerprint to compare).
#
# Usage: analysis/make_real_corpus.sh [OUT_DIR]     (default: data/realtext)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/realtext}"
code_mb="${CODE_MB:-48}"
# Makes sure every crate of Cargo.lock is unpacked (a no-op after a build).
cargo fetch --locked >/dev/null
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
mkdir -p "$out"
python3 - "$registry" "$out" "$code_mb" <<'PY'
import os, sys, tomllib
sys.path.insert(0, "analysis")
from jsonl_corpus import write
registry, out, code_mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open("Cargo.lock", "rb") as f:
    lock = tomllib.load(f)
wanted = {f"{p['name']}-{p['version']}" for p in lock["package"] if p.get("source", "").startswith("registry+")}
crates = {}
for index in sorted(os.listdir(registry)):  # one folder per registry index
    for c in sorted(os.listdir(os.path.join(registry, index))):
        if c in wanted and c not in crates:
            crates[c] = os.path.join(registry, index, c)
missing = wanted - set(crates)
if missing:
    sys.exit(f"{len(missing)} crates of Cargo.lock are not unpacked in {registry} (e.g. {sorted(missing)[0]}); run `cargo fetch`")

def files(ext):
    got = []
    for c in sorted(crates):
        root = crates[c]
        for d, dirs, fs in os.walk(root, followlinks=False):
            dirs.sort()
            for f in sorted(fs):
                p = os.path.join(d, f)
                if f.endswith(ext) and os.path.isfile(p) and not os.path.islink(p):
                    got.append(p)
    return got

print(f"{len(crates)} crates from Cargo.lock")
write(out, "prose", files(".md"), float("inf"), 0)
write(out, "code", files(".rs"), code_mb * 1e6, 0)
PY
echo "wrote $out/prose.jsonl and $out/code.jsonl (sweeps/realtext.toml reads them)"
