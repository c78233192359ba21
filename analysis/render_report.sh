#!/usr/bin/env bash
# Renders a windtunnel HTML report in a real headless browser (Debian's chromium) and checks it:
#   analysis/render_report.sh results/quickstart/report.html report.png
# Writes OUT.png (a full-page screenshot, 1200 px wide) and OUT.dom.html (the DOM after load),
# then fails if the page did not load, if any inline <svg> has no drawn data (no <path>,
# <polyline>, <circle> or <polygon>), or if the page references anything outside itself.
# Installs chromium with apt-get when it is missing (root, Debian).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 REPORT.html OUT.png" >&2
    exit 2
fi
report=$1
out=$2
[ -f "$report" ] || { echo "error: $report: no such file" >&2; exit 2; }

browser=""
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
    echo "chromium not found; installing it with apt-get" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    browser=chromium
fi

url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --hide-scrollbars --user-data-dir="$profile")

dom="${out%.png}.dom.html"
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$dom" 2>/dev/null
timeout 120 "$browser" "${flags[@]}" --screenshot="$out" --window-size=1200,4000 "$url" >/dev/null 2>&1

fail=0
if ! grep -q "</main>" "$dom"; then
    echo "FAIL: the page did not load (no </main> in the dumped DOM: $dom)" >&2
    fail=1
fi
python3 - "$dom" <<'EOF' || fail=1
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
bad = [i for i, s in enumerate(svgs) if not re.search(r"<(path|polyline|circle|polygon)\b", s)]
ext = re.findall(r"""(?:src|href)\s*=\s*["'](?!#)[^"']+""", dom) + \
      [u for u in re.findall(r"https?://[^\s\"'<>)]+", dom) if u != "http://www.w3.org/2000/svg"]
print(f"{len(svgs)} inline SVG plot(s), {len(svgs) - len(bad)} with drawn data; {len(ext)} external reference(s)")
for i in bad:
    print(f"FAIL: SVG #{i + 1} has no drawn data", file=sys.stderr)
for u in ext:
    print(f"FAIL: external reference {u}", file=sys.stderr)
sys.exit(1 if bad or ext or not svgs else 0)
EOF
if [ ! -s "$out" ]; then
    echo "FAIL: no screenshot written to $out" >&2
    fail=1
fi
[ $fail -eq 0 ] && echo "ok: $out ($(wc -c <"$out") bytes), DOM in $dom"
exit $fail
