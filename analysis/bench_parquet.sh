#!/usr/bin/env bash
# Parquet tokenization figures: `windtunnel bench-parquet` writes a FineWeb-Edu-layout file
# (eleven columns, zstd, row groups of 2,000 rows) of at least 200 MB of pseudo-English, then
# times, each into a fresh token cache: reading the text column alone, tokenizing with the
# byte tokenizer (all rows, then `int_score >= 3`), and with a byte-level BPE tokenizer.json
# (vocabulary 8192, trained in the binary on 4 MB of the text, or pass one as $2). Each line
# gives MB/s of text and the peak resident memory of that pass.
# Usage: analysis/bench_parquet.sh [work dir, default /tmp/wt-parquet-bench] [tokenizer.json]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/windtunnel/target}"
cargo build --release --quiet
wt="$CARGO_TARGET_DIR/release/windtunnel"
work="${1:-/tmp/wt-parquet-bench}"
tok=()
[ -n "${2:-}" ] && tok=(--tokenizer "$2")
echo "== $(nproc) cores; $("$wt" --version 2>/dev/null || echo windtunnel)"
"$wt" bench-parquet --mb 200 --dir "$work" "${tok[@]}"
