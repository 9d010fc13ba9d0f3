#!/usr/bin/env bash
# Build the separate MindSpore environment (.venv-mindspore) and run the backend's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-mindspore/bin/python ]; then
    "$PYTHON" -m venv .venv-mindspore
fi
.venv-mindspore/bin/python -m pip install --quiet --upgrade pip
.venv-mindspore/bin/python -m pip install --quiet -e ".[mindspore,test]"
exec .venv-mindspore/bin/python -m pytest -q -m mindspore tests/test_mindspore_backend.py "$@"
