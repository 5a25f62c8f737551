#!/usr/bin/env bash
# Throughput benchmark of `slant score`: sentences/s and peak RSS, median of several runs.
#
#   benches/run.sh [DATA_DIR] [RUNS]      # DATA_DIR defaults to SLANT_DATA, RUNS to 5
#
# Builds the corpus from PolNeAR's test-split texts (84 articles, 7 US outlets; see
# benches/make_corpus.py), builds the release binary, then runs
#   slant score CORPUS --format jsonl --out /dev/null
# RUNS times under /usr/bin/time, for each thread count in THREADS (default "2 1").
# SCORE_ARGS adds options to every run, e.g. SCORE_ARGS=--no-spans for the sentence heads only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-${SLANT_DATA:-}}"
runs="${2:-5}"
threads_list="${THREADS:-2 1}"
[ -n "$data" ] || { echo "usage: benches/run.sh DATA_DIR [RUNS] (or set SLANT_DATA)" >&2; exit 2; }
cd "$root"
models/fetch
cargo build --release --locked --quiet
mkdir -p .cache/bench
corpus=.cache/bench/polnear-test.jsonl
python3 benches/make_corpus.py "$data" "$corpus" test
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
for t in $threads_list; do
  rates=(); rss=()
  for i in $(seq "$runs"); do
    log=$(mktemp)
    /usr/bin/time -f 'maxrss_kb=%M' target/release/slant --threads "$t" score "$corpus" \
      --format jsonl --out /dev/null ${SCORE_ARGS:-} 2>"$log" || { cat "$log" >&2; exit 1; }
    rates+=("$(sed -n 's/.* = \([0-9.]*\) sentences\/s.*/\1/p' "$log")")
    rss+=("$(sed -n 's/maxrss_kb=//p' "$log")")
    sents=$(sed -n 's/.* articles, \([0-9]*\) sentences.*/\1/p' "$log")
    rm -f "$log"
  done
  python3 - "$t" "$sents" "${rates[*]}" "${rss[*]}" <<'PY'
import statistics, sys
t, sents, rates, rss = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [int(x) for x in sys.argv[4].split()]
print(f"threads {t}: {sents} sentences; sentences/s median {statistics.median(rates):.1f} "
      f"(runs: {', '.join(f'{r:.1f}' for r in rates)}); peak RSS median {statistics.median(rss)/1024:.0f} MiB")
PY
done
