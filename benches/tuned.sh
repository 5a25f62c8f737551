#!/usr/bin/env bash
# Cost of the tuned loaded head in `slant score`: --tuned (which reruns the encoder's top 3
# layers with merged LoRA adapters) against the default (frozen head only),
# alternated runs on the same corpus as benches/run.sh.
#
#   benches/tuned.sh [DATA_DIR] [ROUNDS]     # DATA_DIR defaults to SLANT_DATA, ROUNDS to 3
#
# THREADS (default 2) sets --threads; PRECISION (default fp32) sets --precision.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-${SLANT_DATA:-}}"
rounds="${2:-3}"
[ -n "$data" ] || { echo "usage: benches/tuned.sh DATA_DIR [ROUNDS] (or set SLANT_DATA)" >&2; exit 2; }
cd "$root"
models/fetch
cargo build --release --locked --quiet
mkdir -p .cache/bench
corpus=.cache/bench/polnear-test.jsonl
python3 benches/make_corpus.py "$data" "$corpus" test
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
run() {
  local log; log=$(mktemp)
  /usr/bin/time -f 'maxrss_kb=%M cpu_s=%U+%S' target/release/slant --threads "${THREADS:-2}" score "$corpus" \
    --precision "${PRECISION:-fp32}" --format jsonl --out /dev/null "$@" 2>"$log" || { cat "$log" >&2; exit 1; }
  echo "$(sed -n 's/.* = \([0-9.]*\) sentences\/s.*/\1/p' "$log") $(sed -n 's/maxrss_kb=\([0-9]*\).*/\1/p' "$log")"
  rm -f "$log"
}
tuned=(); frozen=(); rss_t=(); rss_f=()
for i in $(seq "$rounds"); do
  read -r r m < <(run --tuned); tuned+=("$r"); rss_t+=("$m")
  read -r r m < <(run); frozen+=("$r"); rss_f+=("$m")
done
python3 - "${tuned[*]}" "${frozen[*]}" "${rss_t[*]}" "${rss_f[*]}" <<'PY'
import statistics, sys
t, f = [list(map(float, a.split())) for a in sys.argv[1:3]]
mt, mf = [list(map(int, a.split())) for a in sys.argv[3:5]]
print(f"--tuned:          sentences/s median {statistics.median(t):.1f} (runs {t}); peak RSS median {statistics.median(mt)/1024:.0f} MiB")
print(f"default (frozen): sentences/s median {statistics.median(f):.1f} (runs {f}); peak RSS median {statistics.median(mf)/1024:.0f} MiB")
print(f"tuned / frozen: median of per-round ratios {statistics.median(a / b for a, b in zip(t, f)):.3f}")
PY
