#!/usr/bin/env bash
# Set up and run the test suite (unit, doctest, golden, CLI end to end).
# Tests that need the shared data folder (FLOWSENTINEL_DATA, default ../shared/data)
# skip with a reason where it is absent; live-capture tests need root and ip netns.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
