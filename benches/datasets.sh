#!/usr/bin/env bash
# Peak RSS and wall time of scoring into a dataset and of the analyses that read it, as the
# corpus grows (a benchmark, not a test: machines are shared and noisy).
#
#   benches/datasets.sh DATA_DIR [SIZES]      # SIZES: replication factors, default "1 10 50"
#
# 1. Scores PolNeAR's 1,008 articles once (--format parquet), converts the dataset to JSONL
#    with `slant merge`, and replicates it K times with new ids (benches/replicate_dataset.py),
#    then times `profile` and `compare --a breitbart --b nyt` on each size.
# 2. Scores "short" corpora (each PolNeAR article cut to its first ~160 bytes, replicated K
#    times with new ids) with --format jsonl and parquet: the encoder's share of the work is
#    small, so memory growth with the article count shows.
# Output: one line per run, `what | size | seconds | peak KB`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${1:?usage: benches/datasets.sh DATA_DIR [SIZES]}
SIZES=${2:-"1 10 50"}
B=target/release/slant
W=.cache/bench
mkdir -p "$W"
cargo build --release --locked -q
[ -f "$W/polnear-all.jsonl" ] || python3 benches/make_corpus.py "$DATA" "$W/polnear-all.jsonl" train dev test
t() { /usr/bin/time -f "%e | %M" "$@" 2>&1 >/dev/null | tail -1; }
echo "score polnear 1008 articles (parquet) | $(t $B --threads 2 score $W/polnear-all.jsonl --format parquet --out $W/polnear.parquet -q)"
$B merge $W/polnear.parquet --out $W/polnear.jsonl -q
for k in $SIZES; do
  python3 benches/replicate_dataset.py $W/polnear.jsonl $W/polnear-x$k.jsonl "$k"
  echo "profile | ${k}x1008 | $(t $B --threads 2 profile $W/polnear-x$k.jsonl --format json -q)"
  echo "compare | ${k}x1008 | $(t $B --threads 2 compare $W/polnear-x$k.jsonl --a breitbart --b nyt --format json -q)"
done
echo "compare from parquet | 1x1008 | $(t $B --threads 2 compare $W/polnear.parquet --a breitbart --b nyt --format json -q)"
python3 - "$W" $SIZES <<'PY'
import json, sys
w, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
rows = [json.loads(l) for l in open(f"{w}/polnear-all.jsonl")]
for k in sizes:
    with open(f"{w}/short-x{k}.jsonl", "w") as f:
        for c in range(k):
            for r in rows:
                t = r["text"][:160]
                t = t[: t.rfind(" ")] if " " in t else t
                f.write(json.dumps({"id": f"{r['id']}~{c}", "source": r["source"], "text": t}) + "\n")
PY
for k in $SIZES; do
  for fmt in jsonl parquet; do
    echo "score short $fmt | ${k}x1008 | $(t $B --threads 2 score $W/short-x$k.jsonl --format $fmt --out $W/short-x$k.$fmt -q)"
  done
done
