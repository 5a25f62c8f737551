#!/usr/bin/env bash
# Engine comparison: `slant score` end to end with --engine candle vs --engine fast on the same
# corpus, runs alternated (candle, fast, candle, fast, ...) so machine noise hits both alike.
#
#   benches/engines.sh [DATA_DIR] [RUNS]    # DATA_DIR defaults to SLANT_DATA, RUNS to 3
#
# Corpus: PolNeAR's test-split texts (3,041 sentences; benches/make_corpus.py). For each thread
# count in THREADS (default "2 1") prints sentences/s medians per engine, the median of the
# per-pair ratios fast/candle, and peak RSS. Also checks that both engines' outputs agree to the
# 4 decimals slant prints, and that the fast engine's output is byte-identical at every thread
# count.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-${SLANT_DATA:-}}"
runs="${2:-3}"
threads_list="${THREADS:-2 1}"
[ -n "$data" ] || { echo "usage: benches/engines.sh DATA_DIR [RUNS] (or set SLANT_DATA)" >&2; exit 2; }
cd "$root"
models/fetch
cargo build --release --locked --quiet
mkdir -p .cache/bench
corpus=.cache/bench/polnear-test.jsonl
python3 benches/make_corpus.py "$data" "$corpus" test >/dev/null
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
one() { # engine threads out -> "rate rss_kb"
  local log; log=$(mktemp)
  /usr/bin/time -f 'maxrss_kb=%M' target/release/slant --threads "$2" score "$corpus" \
    --engine "$1" --format jsonl --out "$3" 2>"$log" || { cat "$log" >&2; exit 1; }
  echo "$(sed -n 's/.* = \([0-9.]*\) sentences\/s.*/\1/p' "$log") $(sed -n 's/maxrss_kb=//p' "$log")"
  rm -f "$log"
}
for t in $threads_list; do
  c_rates=(); f_rates=(); c_rss=(); f_rss=()
  for i in $(seq "$runs"); do
    read -r r m < <(one candle "$t" ".cache/bench/out-candle-$t.jsonl"); c_rates+=("$r"); c_rss+=("$m")
    read -r r m < <(one fast "$t" ".cache/bench/out-fast-$t.jsonl"); f_rates+=("$r"); f_rss+=("$m")
  done
  python3 - "$t" "${c_rates[*]}" "${f_rates[*]}" "${c_rss[*]}" "${f_rss[*]}" <<'PY'
import statistics as st, sys
t = sys.argv[1]
c, f = [list(map(float, a.split())) for a in sys.argv[2:4]]
cm, fm = [list(map(int, a.split())) for a in sys.argv[4:6]]
ratios = [y / x for x, y in zip(c, f)]
fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
print(f"threads {t}: candle {st.median(c):.1f} sent/s ({fmt(c)}), peak RSS {st.median(cm)/1024:.0f} MiB")
print(f"threads {t}: fast   {st.median(f):.1f} sent/s ({fmt(f)}), peak RSS {st.median(fm)/1024:.0f} MiB")
print(f"threads {t}: fast/candle median ratio {st.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})")
PY
done
python3 - "$threads_list" <<'PY'
import json, sys
ts = sys.argv[1].split()
def load(p):
    return [json.loads(l) for l in open(p)]
for t in ts:
    a, b = load(f".cache/bench/out-candle-{t}.jsonl"), load(f".cache/bench/out-fast-{t}.jsonl")
    worst = max(abs(x["loaded"] - y["loaded"]) for x, y in zip(a, b))
    print(f"threads {t}: {len(a)} sentences, max |loaded(fast) - loaded(candle)| = {worst:.4f}")
ref = open(f".cache/bench/out-fast-{ts[0]}.jsonl", "rb").read()
same = all(open(f".cache/bench/out-fast-{t}.jsonl", "rb").read() == ref for t in ts)
print(f"fast output byte-identical across threads {', '.join(ts)}: {same}")
PY
