#!/usr/bin/env bash
# Save the output of every user-facing command to a folder, so that a refactoring can be checked
# to change no behaviour: run it before and after, then `diff -r BEFORE AFTER` must be empty.
#
#   scripts/snapshot-behaviour.sh OUT_DIR [SLANT_BINARY]
#
# SLANT_BINARY defaults to target/release/slant (build it first: cargo build --release).
# With labelled data (SLANT_DATA, else ../shared/data) it also saves `eval all`'s results.json
# and the sha256 of a frames head trained by `train frames` (written to a temporary folder,
# never models/; its header's git_commit normalised).
# The git commit in the outputs' manifests is replaced by GIT, the only field that must differ.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:?usage: scripts/snapshot-behaviour.sh OUT_DIR [SLANT_BINARY]}"
bin="${2:-target/release/slant}"
[ -x "$bin" ] || { echo "error: $bin not found; run cargo build --release" >&2; exit 2; }
data="${SLANT_DATA:-}"
[ -z "$data" ] && [ -d ../shared/data ] && data="$(cd ../shared/data && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Normalise what legitimately changes from commit to commit.
norm() { sed -E 's/("git_commit": ?")[^"]*"/\1GIT"/g; s/(git commit:? )[0-9a-f]{7,40}(-dirty)?/\1GIT/g'; }

run() { # run NAME ARGS...: stdout to NAME (normalised), exit code to NAME.rc
  local name="$1"; shift
  local rc=0
  env -u SLANT_DATA -u SLANT_MODEL -u SLANT_ENGINE -u SLANT_PRECISION \
    "$bin" "$@" 2> "$out/$name.err" > "$out/$name.raw" || rc=$?
  [ -s "$out/$name.err" ] || rm "$out/$name.err"
  norm < "$out/$name.raw" > "$out/$name"
  rm "$out/$name.raw"
  echo "$rc" > "$out/$name.rc"
}

# --help of every (sub)command
helps=("" score compare split train eval)
for t in loaded loaded-tuned frames attribution loaded-spans; do helps+=("train $t"); done
for e in $("$bin" eval --help | awk '/^Commands:/ {f = 1; next} /^$/ {f = 0} f && /^  [a-z]/ && $1 != "help" {print $1}'); do
  helps+=("eval $e")
done
for h in "${helps[@]}"; do
  # shellcheck disable=SC2086
  run "help-${h// /_}.txt" $h --help
done

# score seeds: every format, fp32 and int8, frozen and tuned head
for fmt in table json jsonl csv; do
  for prec in fp32 int8; do
    run "score-$fmt-$prec.out" --threads 2 score seeds --format "$fmt" --precision "$prec" -q
    run "score-$fmt-$prec-tuned.out" --threads 2 score seeds --format "$fmt" --precision "$prec" --tuned -q
  done
done

# compare two seed sources
a=000_0ac7ef0ff899d3ba
b=003_4f504e27a0b360eb
run compare-table.out --threads 2 compare seeds --a "$a" --b "$b" -q
run compare-json.out --threads 2 compare seeds --a "$a" --b "$b" --format json -q

# the splitter
run split-000.txt split "seeds/$a.txt"
run split-000.jsonl split "seeds/$a.txt" --format jsonl
run eval-splitter-table.out eval splitter
run eval-splitter-json.out eval splitter --format json

# errors: a missing input and a missing head
run score-missing.out score does-not-exist.jsonl -q
run score-bad-head.out score seeds --head does-not-exist.safetensors -q

if [ -n "$data" ] && [ -d "$data" ]; then
  tmp="$(mktemp -d)"
  "$bin" --threads 2 eval all --data "$data" --out "$tmp/run" >/dev/null 2>&1
  cp "$tmp/run/results.json" "$out/eval-all-results.json"
  "$bin" --threads 2 train frames --data "$data" --out "$tmp/frames.safetensors" \
    --card "$tmp/FRAMES_CARD.md" >/dev/null 2>&1
  # the head's sha256 with its header's git_commit (the build's commit) normalised
  python3 - "$tmp/frames.safetensors" > "$out/train-frames.sha256" <<'PY'
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
head.get("__metadata__", {})["git_commit"] = "GIT"
print(hashlib.sha256(json.dumps(head, sort_keys=True).encode() + b[8 + n:]).hexdigest())
PY
  rm -rf "$tmp"
else
  echo "no labelled data: eval all and train frames left out" > "$out/NO_DATA"
fi
echo "snapshot written to $out ($(ls "$out" | wc -l) files)" >&2
