"""Writes one text domain for windtunnel's `jsonl` data source: one JSON object per file
({"text": ...}), the files in a seeded shuffle so that the held-out validation chunks (the end
of each domain's stream) mix many files instead of the last ones alphabetically. Shared by
make_real_corpus.sh and make_system_corpus.sh."""
import gzip
import hashlib
import json
import os
import random
import sys


def read(path):
    """A file's text (gzipped files unpacked), undecodable bytes replaced."""
    b = open(path, "rb").read()
    if path.endswith(".gz"):
        b = gzip.decompress(b)
    return b.decode("utf-8", "replace")


def write(out, name, paths, cap_bytes, seed):
    """Writes OUT/NAME.jsonl from `paths` (shuffled with `seed`) up to `cap_bytes`; prints the
    count, size and a fingerprint to compare across machines."""
    random.Random(seed).shuffle(paths)
    h, size, n = hashlib.sha256(), 0, 0
    with open(os.path.join(out, name + ".jsonl"), "w") as o:
        for p in paths:
            try:
                text = read(p)
            except (OSError, EOFError, gzip.BadGzipFile):
                continue
            # Tiny files (a one-line README) are mostly boilerplate; generated tables and
            # vendored data blobs (>256 KB) would dominate the stream.
            if len(text) < 200 or len(text) > 256_000:
                continue
            line = json.dumps({"text": text}) + "\n"
            if size + len(line) > cap_bytes:
                break
            o.write(line)
            h.update(line.encode())
            size += len(line)
            n += 1
    if n == 0:
        sys.exit(f"{name}: no usable files")
    print(f"{name}: {n} files, {size / 1e6:.1f} MB, sha256 {h.hexdigest()[:16]}")


def walk(root, keep):
    """The regular files under `root` (no symlinks) whose names `keep` accepts, in a
    deterministic order (directories and names sorted)."""
    got = []
    for d, dirs, fs in os.walk(root):
        dirs.sort()
        for f in sorted(fs):
            p = os.path.join(d, f)
            if keep(f) and os.path.isfile(p) and not os.path.islink(p):
                got.append(p)
    return got
