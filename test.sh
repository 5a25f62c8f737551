#!/usr/bin/env bash
# The test command: fetch the encoder if needed (idempotent, sha256-checked), then run every test.
# Tests needing labelled data use SLANT_DATA or ../shared/data and skip (saying so) without it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
models/fetch
cargo test --locked "$@"
