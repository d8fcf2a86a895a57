#!/usr/bin/env bash
# The Python-level benchmarks (benches/python/bench_python.py): policy checks against cedarpy and
# token counting against tiktoken, with the extension built in release mode in its own venv.
# Writes docs/bench/<date>-<machine>/python.csv and python-summary.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/venv-python-bench
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bindings-python/requirements-dev.txt
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --release --locked -m bindings-python/Cargo.toml
OUT="docs/bench/$(date +%Y-%m-%d)-${MACHINE:-vm}"
mkdir -p "$OUT"
"$VENV/bin/python" benches/python/bench_python.py --csv "$OUT/python.csv" --summary "$OUT/python-summary" "$@"
