#!/usr/bin/env bash
# Load benchmark: `slant score` on N articles (PolNeAR's 1,008 articles replicated with new ids,
# default 50,000) at each thread count, with memory sampled while it runs, then checked:
# the run exits 0 and leaves only its final file, every article is in the output exactly once
# with every sentence once (each replica has exactly the sentences of its original), and the
# output files of all thread counts are byte-identical. A benchmark, not a test (it takes
# about 100 minutes at 2 threads for 50,000 articles in fp32 on a 2-core machine).
#
#   benches/load.sh DATA_DIR [N=50000] [THREADS="1 2"] [FORMAT=jsonl]
#
# Environment:
#   PRECISION=fp32|int8   passed to `slant score --precision` (default fp32)
#   PARALLEL=1            start the runs of all thread counts at once instead of one after the
#                         other (for the memory, counts and identity checks; their times and
#                         sentences/s then share the machine and are not throughput figures)
#   SLANT_BIN=FILE        the binary to run (default: build target/release/slant and copy it to
#                         the work folder, so a rebuild during the run cannot change it)
#
# Output: one line per run (seconds, sentences/s, peak RSS, RSS at each quarter of the run)
# and the checks; exits 1 when a check fails. Files go to .cache/bench/load/ (git-ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${1:?usage: benches/load.sh DATA_DIR [N] [THREADS] [FORMAT]}
N=${2:-50000}
THREADS=${3:-"1 2"}
FORMAT=${4:-jsonl}
PRECISION=${PRECISION:-fp32}
W=.cache/bench/load
mkdir -p "$W"
if [ -n "${SLANT_BIN:-}" ]; then
  B=$SLANT_BIN
else
  cargo build --release --locked -q
  B="$W/slant-$(git rev-parse --short HEAD)"
  cp target/release/slant "$B"
fi
echo "binary: $B ($(sha256sum "$B" | cut -c1-12)), precision $PRECISION"
[ -f .cache/bench/polnear-all.jsonl ] ||
  python3 benches/make_corpus.py "$DATA" .cache/bench/polnear-all.jsonl train dev test
corpus="$W/polnear-$N.jsonl"
python3 - .cache/bench/polnear-all.jsonl "$corpus" "$N" <<'PY'
import json, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(src)]
with open(dst, "w") as out:
    for i in range(n):
        r = dict(rows[i % len(rows)])
        r["id"] = f"{r['id']}~{i // len(rows)}"
        out.write(json.dumps(r, ensure_ascii=False) + "\n")
PY
echo "corpus: $N articles ($(du -h "$corpus" | cut -f1)), format $FORMAT"
run_one() {
  local t=$1 out="$W/out-$N-t$1.$FORMAT"
  local trace="$W/rss-$N-t$t.tsv" pid rc start secs left
  rm -f "$out" "$out".partial*
  start=$(date +%s.%N)
  "$B" --threads "$t" score "$corpus" --precision "$PRECISION" --format "$FORMAT" --out "$out" -q &
  pid=$!
  : >"$trace"
  # RSS (KiB) and the bytes of finished chunks written so far, every 2 s.
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
    done_bytes=$( (cat "$out".partial* 2>/dev/null || true) | wc -c)
    [ -n "$rss" ] && printf '%s\t%s\t%s\n' "$(date +%s)" "$rss" "$done_bytes" >>"$trace"
    sleep 2
  done
  rc=0
  wait "$pid" || rc=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  left=$(compgen -G "$out.partial*" | wc -l || true)
  python3 - "$trace" "$t" "$secs" "$rc" "$left" <<'PY'
import sys
trace, t, secs, rc, left = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = [tuple(int(x) for x in l.split("\t")) for l in open(trace) if l.strip()]
rss = [r[1] for r in rows]
q = lambda f: max(rss[: max(1, int(len(rss) * f))]) // 1024
first, second = rss[: len(rss) // 2] or rss, rss[len(rss) // 2 :] or rss
print(f"threads {t}: exit {rc}, {secs:.0f} s, peak RSS {max(rss) // 1024} MiB; "
      f"peak by 25/50/75/100% of the run: {q(.25)}/{q(.5)}/{q(.75)}/{q(1)} MiB; "
      f"second-half / first-half peak {max(second) / max(first):.3f}; partial files left: {left}")
PY
  [ "$rc" -eq 0 ] && [ "$left" -eq 0 ] || { echo "FAIL: threads $t: exit $rc, $left partial files" >&2; return 1; }
}

outs=()
for t in $THREADS; do outs+=("$W/out-$N-t$t.$FORMAT"); done
if [ "${PARALLEL:-0}" = 1 ]; then
  pids=()
  for t in $THREADS; do run_one "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || exit 1; done
else
  for t in $THREADS; do run_one "$t" || exit 1; done
fi
python3 - "$corpus" "$N" "${outs[0]}" <<'PY'
import collections, json, sys
corpus, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if not out.endswith(".jsonl"):
    print("counts: checked on --format jsonl only"); sys.exit(0)
ids = [json.loads(l)["id"] for l in open(corpus)]
sent = collections.defaultdict(set)
dup = 0
articles = set()
kinds = collections.Counter()
for line in open(out):
    r = json.loads(line)
    kinds[r["record"]] += 1
    if r["record"] == "sentence":
        key = r["article"]
        if r["index"] in sent[key]:
            dup += 1
        sent[key].add(r["index"])
    elif r["record"] == "article":
        articles.add(r["id"])
missing = [i for i in ids if i not in sent]
gaps = [a for a, s in sent.items() if s != set(range(len(s)))]
per_base = collections.defaultdict(set)
for a, s in sent.items():
    per_base[a.rsplit("~", 1)[0]].add(len(s))
uneven = [b for b, c in per_base.items() if len(c) != 1]
print(f"counts: {len(ids)} articles in, {len(sent)} with sentences out, {len(articles)} article records, "
      f"{kinds['sentence']} sentences, {kinds['error']} record errors; missing {len(missing)}, "
      f"duplicated sentences {dup}, index gaps {len(gaps)}, replicas with another sentence count {len(uneven)}")
ok = not missing and not dup and not gaps and not uneven and len(articles) == len(ids) == n
print("counts check:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
if [ "${#outs[@]}" -gt 1 ]; then
  sums=$(sha256sum "${outs[@]}" | awk '{print $1}' | sort -u | wc -l)
  sha256sum "${outs[@]}" | sed "s|$W/||"
  [ "$sums" -eq 1 ] && echo "outputs of threads $THREADS: byte-identical" ||
    { echo "FAIL: outputs differ between thread counts" >&2; exit 1; }
fi
