#!/usr/bin/env bash
# Makes docs/img/report-seeds.png, the README's picture of the seeds' HTML report: scores the
# seeds, writes the report, and has headless Chromium take a 1200x1800 screenshot of its top.
# With Pillow importable by python3 the PNG is reduced to a 64-colour palette (smaller file).
#
#   bash scripts/report-screenshot.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo run --release --quiet -- report seeds --a 000_0ac7ef0ff899d3ba --b 003_4f504e27a0b360eb \
  --out "$tmp/seeds.html" -q
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --user-data-dir="$tmp/profile" --hide-scrollbars --window-size=1200,1800 \
  --screenshot="$tmp/shot.png" "file://$tmp/seeds.html" >/dev/null 2>&1
out=docs/img/report-seeds.png
if python3 -c 'import PIL' 2>/dev/null; then
  python3 - "$tmp/shot.png" "$out" <<'PY'
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").quantize(colors=64).save(sys.argv[2], optimize=True)
PY
else
  cp "$tmp/shot.png" "$out"
fi
echo "wrote $out ($(wc -c <"$out") bytes)"
