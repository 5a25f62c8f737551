#!/usr/bin/env bash
# Time-bounded fuzz run of slant's property tests (ingest, splitter, spans, report markup,
# record JSON; see src/fuzz_tests.rs): runs them again and again, each time with a fresh seed
# and many cases, until MINUTES are up, then reports the duration, the inputs tried and every
# failure with its seed and proptest's minimal failing input. Not part of CI, which runs the
# same properties once with a fixed seed (`cargo test`).
#
#   scripts/fuzz.sh [MINUTES=10] [CASES_PER_PROPERTY_PER_ROUND=2000]
#
# Reproduce a failure: SLANT_FUZZ_SEED=SEED SLANT_FUZZ_CASES=CASES cargo test --release --lib fuzz_tests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes="${1:-10}"
cases="${2:-2000}"
log="${SLANT_FUZZ_LOG:-target/fuzz}"
mkdir -p "$log"
cargo test --release --lib --no-run --quiet 2>/dev/null
props="$(cargo test --release --lib -- --list fuzz_tests 2>/dev/null | grep -c ': test$')"
start=$(date +%s)
deadline=$((start + minutes * 60))
rounds=0
failed=0
seed=$(( $(date +%s%N) % 1000000007 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  seed=$((seed + 7919))
  if SLANT_FUZZ_SEED=$seed SLANT_FUZZ_CASES=$cases \
      cargo test --release --lib --quiet fuzz_tests >"$log/round.log" 2>&1; then
    :
  else
    failed=$((failed + 1))
    cp "$log/round.log" "$log/failure-seed-$seed.log"
    echo "FAILURE with SLANT_FUZZ_SEED=$seed SLANT_FUZZ_CASES=$cases (log: $log/failure-seed-$seed.log):" >&2
    grep -E "panicked|minimal failing input" -A3 "$log/round.log" | head -20 >&2 || true
  fi
  rounds=$((rounds + 1))
done
secs=$(( $(date +%s) - start ))
echo "fuzz: ${secs}s, $rounds rounds x $props properties x $cases cases = $((rounds * props * cases)) inputs, $failed failed rounds"
[ "$failed" -eq 0 ]
