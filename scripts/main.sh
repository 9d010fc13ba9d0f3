#!/usr/bin/env bash
# The main job: set up, then train and evaluate the CNN-BiLSTM on the NF-BoT-IoT-v2
# sample (multiclass under the paper and dedup protocols, then binary), each with
# the Extra Trees reference and the majority baseline beside it; then the binary
# model for metered traffic (configs/meter.toml) and its alerts on the shared captures.
# Without the shared data folder it runs on clearly labelled synthetic flows.
# Models go to models/, reports (Markdown, JSON, PNG) to reports/; each step's wall time goes to stderr.
# Extra arguments go to every `flowsentinel train`, e.g. --set model.num_threads=1
# FLOWSENTINEL_PYTHON=/path/to/python runs it with an interpreter that already imports
# flowsentinel (set-up skipped), e.g. from a second checkout with PYTHONPATH=src.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${FLOWSENTINEL_PYTHON:-}" ]; then
    PY=$FLOWSENTINEL_PYTHON
else
    bash scripts/setup.sh
    PY=.venv/bin/python
fi
timed() {  # timed NAME COMMAND...: run it, then say how long it took
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "main: $name took $((SECONDS - start)) s" >&2
}
FS=("$PY" -m flowsentinel.cli)
timed paper-multiclass "${FS[@]}" train --config configs/paper.toml --protocol paper --task multiclass \
    --model-dir models/cnn-bilstm --report-dir reports/paper-multiclass "$@"
timed dedup-multiclass "${FS[@]}" train --protocol dedup --task multiclass \
    --model-dir models/cnn-bilstm-dedup --report-dir reports/dedup-multiclass "$@"
timed paper-binary "${FS[@]}" train --config configs/paper.toml --protocol paper --task binary \
    --set model.target_far=0.02 --model-dir models/cnn-bilstm-binary --report-dir reports/paper-binary "$@"
timed meter-binary "${FS[@]}" train --config configs/meter.toml --protocol paper \
    --model-dir models/cnn-bilstm-meter --report-dir reports/meter-binary "$@"
"${FS[@]}" info --model-dir models/cnn-bilstm
timed alerts "$PY" scripts/alerts_on_captures.py --model-dir models/cnn-bilstm-meter --if-present
echo "main: $SECONDS s in all; reports in reports/*/report.md, models in models/" >&2
