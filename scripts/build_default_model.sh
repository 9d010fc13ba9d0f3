#!/usr/bin/env bash
# Rebuild a model that ships inside flowsentinel from the shared data, then measure it for
# docs/model-card.md.
#   bash scripts/build_default_model.sh [default|exporter] [extra `flowsentinel train` options]
# default:  configs/shipped.toml          -> src/flowsentinel/data/models/default  (detect, serve, ...)
# exporter: configs/shipped-exporter.toml -> src/flowsentinel/data/models/exporter (collect)
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=default
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then NAME="$1"; shift; fi
case "$NAME" in
    default) CONFIG=configs/shipped.toml ;;
    exporter) CONFIG=configs/shipped-exporter.toml ;;
    *) echo "build_default_model: unknown model '$NAME' (default or exporter)" >&2; exit 2 ;;
esac
bash scripts/setup.sh
OUT=src/flowsentinel/data/models/$NAME
REPORTS=reports/shipped-$NAME
.venv/bin/flowsentinel train --config "$CONFIG" --model-dir "$OUT" --report-dir "$REPORTS" "$@"
.venv/bin/python scripts/model_card.py --model-dir "$OUT" --json "$REPORTS/model-card.json" | tee "$REPORTS/model-card.md"
echo "build_default_model: model in $OUT, its measurements in $REPORTS/" >&2
