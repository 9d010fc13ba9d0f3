#!/usr/bin/env bash
# Create .venv (if missing) and install flowsentinel with everything its tests use.
# Usage: bash scripts/setup.sh   (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)" >&2
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned to the CPU build 2.13.0 in pyproject.toml.
.venv/bin/python -m pip install --quiet -e ".[all]"
echo "setup: flowsentinel $(.venv/bin/python -c 'import flowsentinel; print(flowsentinel.__version__)') installed in .venv" >&2
