#!/usr/bin/env bash
# Builds the Python package into a virtual environment and runs its tests: pytest over the binding
# (conversions, exceptions, threads, plugins), the LangChain integration driving a real agent loop,
# the docs' examples, and the stubs (stubtest, mypy --strict). Installs what it needs from PyPI at
# the pinned versions of requirements-dev.txt; the extension is built once, in the dev profile, in
# the workspace's shared target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FOURFOLD_PYTHON_VENV:-target/venv-python}"
PYTHON="${PYTHON:-python3}"

if ! [ -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian ships venv separately.
        echo "== apt-get install python3-venv"
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
fi

echo "== pip install -r bindings-python/requirements-dev.txt"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bindings-python/requirements-dev.txt

echo "== maturin develop"
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --locked -m bindings-python/Cargo.toml

echo "== pytest bindings-python/tests"
"$VENV/bin/python" -m pytest bindings-python/tests "$@"
