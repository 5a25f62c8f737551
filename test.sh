#!/usr/bin/env bash
# The test command: fetch the encoder if needed (idempotent, sha256-checked), install the optional
# test dependencies, then run every test.
# Tests needing labelled data use SLANT_DATA or ../shared/data and skip (saying so) without it.
# The tests build in the release profile, so they reuse the build of `cargo run --release`
# (one build of the dependencies, not two).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
models/fetch
# The accurate encoder too (404 MB, sha256-checked): tests/mpnet.rs checks MPNet against the
# upstream implementation's vectors.
models/fetch --accurate
# Optional test dependencies (a Python venv with pyarrow/pandas/polars/duckdb/pyspark, a JRE):
# tests that need them skip, saying so, when this could not install them.
bash scripts/install-test-deps.sh
cargo test --release --locked "$@"
