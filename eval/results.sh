#!/usr/bin/env bash
# Regenerate eval/RESULTS.md from real runs: every figure in it comes from the JSON written here.
#
#   eval/results.sh DATA_DIR      (or set SLANT_DATA)
#
# Writes eval/loaded/*.json (the raw `slant eval ... --format json` outputs) and eval/RESULTS.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-${SLANT_DATA:-}}"
[ -n "$data" ] || { echo "usage: eval/results.sh DATA_DIR (or set SLANT_DATA)" >&2; exit 2; }
cd "$root"
models/fetch
cargo build --release --locked --quiet
slant=target/release/slant
mkdir -p eval/loaded
run() { local name=$1; shift; echo "+ slant $*" >&2; "$slant" "$@" --data "$data" --format json > "eval/loaded/$name.json"; }
run anno_lexical_test eval loaded --dataset anno-lexical
run babe_zero_shot   eval loaded --dataset babe
run babe_cv5         eval loaded --dataset babe --cv 5
run babe_cv5_babe_only eval loaded --dataset babe --cv 5 --no-anno-lexical
mkdir -p eval/frames eval/outlets
echo "+ slant eval frames --cv 5" >&2; "$slant" eval frames --cv 5 --data "$data" --format json > eval/frames/cv5.json
echo "+ slant eval outlets" >&2; "$slant" eval outlets --data "$data" --format json > eval/outlets/outlets.json
python3 eval/render_results.py > eval/RESULTS.md
echo "wrote eval/RESULTS.md" >&2
