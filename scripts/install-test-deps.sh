#!/usr/bin/env bash
# Installs what the optional integration tests need (tests/spark.rs and the Python readers of
# scored datasets): a Python venv at .cache/pyenv (git-ignored) with pinned pyarrow, pandas,
# polars, duckdb and pyspark, a headless Java runtime for Spark, and Debian's chromium for the
# HTML report's browser test (tests/report.rs).
#
#   bash scripts/install-test-deps.sh
#
# * Idempotent: a marker in the venv records the pins it installed; with the same pins (and
#   `java` on PATH) it does nothing but print the versions.
# * Java: installed with apt-get (default-jre-headless) only when `java` is missing and this
#   runs as root with apt-get available. Otherwise the script says what is missing and exits 0;
#   the tests that need it then print `skipping: ...` and pass. The same goes for python3.
# * Chromium: the same, with apt-get install chromium (Debian's package, ~100 MB the first time).
# * A failed pip install exits 1 (with pip's log), since that is a real failure.
# * Pins are for CPython 3.11 or newer (pandas 3 needs 3.11). pyspark 4 needs Java 17 or newer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.cache/pyenv
MARKER="$VENV/.slant-test-deps"
PINS=(
  pyarrow==26.0.1
  pandas==3.1.1
  polars==2.1.0
  duckdb==2.0.1
  pyspark==4.3.0
  py4j==0.10.9.9
)
# Distributions whose versions are reported at the end.
REPORT=(pyarrow pandas polars duckdb pyspark py4j)

log() { printf 'install-test-deps: %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
can_apt() { is_root && command -v apt-get >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()

report() {
  if [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" - "${REPORT[@]}" <<'EOF' || true
import sys
from importlib.metadata import version, PackageNotFoundError
print(f"install-test-deps: python {sys.version.split()[0]} ({sys.prefix})")
for name in sys.argv[1:]:
    try:
        v = version(name)
    except PackageNotFoundError:
        v = "not installed"
    print(f"install-test-deps:   {name} {v}")
EOF
  fi
  if command -v java >/dev/null 2>&1; then
    log "java: $(java -version 2>&1 | head -n 1)"
  fi
  if have_chromium; then
    log "chromium: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -n 1)"
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do log "missing: $m"; done
    log "tests that need what is missing print 'skipping: ...' and pass"
  fi
}

want="$(printf '%s\n' "${PINS[@]}")"

# ---------------------------------------------------------------------------------------------
# Java (for pyspark)
java_step() {
  if command -v java >/dev/null 2>&1; then
    return
  fi
  if can_apt; then
    log "installing a headless Java runtime (apt-get install default-jre-headless)"
    if ! apt_install default-jre-headless; then
      missing+=("java (apt-get install default-jre-headless failed)")
      return
    fi
    hash -r
    if ! command -v java >/dev/null 2>&1; then
      missing+=("java (default-jre-headless installed, but no java on PATH)")
    fi
  else
    missing+=("java: install a Java 17+ runtime (as root: apt-get install default-jre-headless)")
  fi
}

# ---------------------------------------------------------------------------------------------
# Chromium (for the HTML report's browser test)
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
chromium_step() {
  if have_chromium; then
    return
  fi
  if can_apt; then
    log "installing chromium (apt-get install chromium)"
    if ! apt_install chromium; then
      missing+=("chromium (apt-get install chromium failed)")
      return
    fi
    hash -r
    have_chromium || missing+=("chromium (installed, but not on PATH)")
  else
    missing+=("chromium: install it (as root: apt-get install chromium)")
  fi
}

# ---------------------------------------------------------------------------------------------
# Fast path: same pins already installed, java and chromium present.
if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ] && [ -x "$VENV/bin/python" ] \
  && "$VENV/bin/python" -c '' 2>/dev/null && command -v java >/dev/null 2>&1 && have_chromium; then
  log "already done ($MARKER matches the pins)"
  report
  exit 0
fi

java_step
chromium_step

# ---------------------------------------------------------------------------------------------
# Python venv
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
  log "$VENV is broken (its interpreter does not start); recreating it"
  rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
  py="$(command -v python3 || true)"
  if [ -z "$py" ] || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
    if can_apt; then
      log "installing python3 and python3-venv (apt-get)"
      apt_install python3 python3-venv || true
      hash -r
      py="$(command -v python3 || true)"
    fi
  fi
  if [ -z "$py" ] || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=("python3 with the venv module (as root: apt-get install python3 python3-venv)")
    report
    exit 0
  fi
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    missing+=("python 3.11 or newer (found $("$py" -c 'import sys; print(sys.version.split()[0])'))")
    report
    exit 0
  fi
  log "creating $VENV with $("$py" --version 2>&1)"
  mkdir -p "$(dirname "$VENV")"
  "$py" -m venv "$VENV"
fi

# ---------------------------------------------------------------------------------------------
# Pinned packages. Wheels only, except pyspark, which is published as a source archive (pure
# Python plus Spark's jars; building its wheel compiles nothing).
log "pip install ${PINS[*]} (pyspark is a large download the first time)"
pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --only-binary=:all: --no-binary=pyspark "${PINS[@]}" >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  log "pip install failed"
  exit 1
fi
if ! "$VENV/bin/python" -c 'import pyarrow, pandas, polars, duckdb, pyspark' >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  log "the installed packages do not import"
  exit 1
fi

if command -v java >/dev/null 2>&1; then
  printf '%s\n' "$want" >"$MARKER"
fi
report
