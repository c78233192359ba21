#!/usr/bin/env bash
# Data loader figures: a 1 GB llm.c shard (random tokens, then sparse) through
# `windtunnel bench-data` (scan GB/s, sampling tokens/s, resident memory), and tokenization
# throughput of a 64 MB JSONL corpus with the byte tokenizer and a byte-level BPE
# tokenizer.json (vocab 8192, trained by analysis/make_text_corpus.py; needs
# `pip install tokenizers`). Compare the sampling rate with the trainer's tokens/s
# (`windtunnel bench`, 5k-45k tokens/s per CPU job).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/windtunnel/target}"
cargo build --release --quiet
wt="$CARGO_TARGET_DIR/release/windtunnel"
work="${1:-/tmp/wt-text-bench}"
echo "== 1 GB shard, random tokens"; "$wt" bench-data --gb 1 --dir "$work"
echo "== 1 GB shard, sparse"; "$wt" bench-data --gb 1 --sparse --dir "$work"
[ -f "$work/corpus.jsonl" ] || python3 analysis/make_text_corpus.py "$work"
for tok in '"bytes"' "{ hf = \"$work/tokenizer.json\" }"; do
    cat > "$work/tok.toml" <<TOML
[sweep]
name = "tokbench"
[data]
tokenizer = $tok
[[data.source]]
name = "corpus"
kind = "jsonl"
path = "$work/corpus.jsonl"
[grid]
width = [32]
depth = [1]
lr = [1e-2]
tokens = [1e6]
[target]
flops = 1e12
TOML
    echo "== tokenizing 64 MB of JSONL with tokenizer = $tok (fresh cache)"
    rm -rf "$work/cache"
    WINDTUNNEL_CACHE="$work/cache" "$wt" plan "$work/tok.toml" | grep '^data '
    echo "== the same again (cached)"
    WINDTUNNEL_CACHE="$work/cache" "$wt" plan "$work/tok.toml" | grep '^data '
done
