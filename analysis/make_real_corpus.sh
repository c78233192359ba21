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
import hashlib, json, os, random, sys, tomllib
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
                    got.append((f"{c}/{os.path.relpath(p, root)}", p))
    return got

def write(name, items, cap_bytes):
    random.Random(0).shuffle(items)
    h, size, n = hashlib.sha256(), 0, 0
    with open(os.path.join(out, name + ".jsonl"), "w") as o:
        for rel, p in items:
            text = open(p, "rb").read().decode("utf-8", "replace")
            # Tiny files (a one-line README) are mostly boilerplate; generated tables and
            # vendored data blobs (>256 KB) would dominate the stream.
            if len(text) < 200 or len(text) > 256_000:
                continue
            line = json.dumps({"text": text}) + "\n"
            if size + len(line) > cap_bytes:
                break
            o.write(line); h.update(line.encode()); size += len(line); n += 1
    print(f"{name}: {n} files, {size / 1e6:.1f} MB, sha256 {h.hexdigest()[:16]}")

print(f"{len(crates)} crates from Cargo.lock")
write("prose", files(".md"), float("inf"))
write("code", files(".rs"), code_mb * 1e6)
PY
echo "wrote $out/prose.jsonl and $out/code.jsonl (sweeps/realtext.toml reads them)"
