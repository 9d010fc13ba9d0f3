#!/usr/bin/env bash
# Rebuild the model that ships inside flowsentinel from the shared data, then measure it for
# docs/model-card.md. Usage: bash scripts/build_default_model.sh [extra `flowsentinel train` options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=src/flowsentinel/data/models/default
.venv/bin/flowsentinel train --config configs/shipped.toml --model-dir "$OUT" --report-dir reports/shipped "$@"
.venv/bin/python scripts/model_card.py --model-dir "$OUT" --json reports/shipped/model-card.json | tee reports/shipped/model-card.md
echo "build_default_model: model in $OUT, its measurements in reports/shipped/" >&2
