#!/usr/bin/env bash
# The main job: set up, then train and evaluate the CNN-BiLSTM on the NF-BoT-IoT-v2
# sample under both evaluation protocols (multiclass), and the binary detector.
# Without the shared data folder it runs on clearly labelled synthetic flows.
# Models go to models/, reports (Markdown, JSON, PNG) to reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
FS=.venv/bin/flowsentinel
$FS train --protocol paper --task multiclass --model-dir models/cnn-bilstm --report-dir reports/paper-multiclass "$@"
$FS train --protocol dedup --task multiclass --model-dir models/cnn-bilstm-dedup --report-dir reports/dedup-multiclass "$@"
$FS train --protocol paper --task binary --model-dir models/cnn-bilstm-binary --report-dir reports/paper-binary "$@"
$FS info --model-dir models/cnn-bilstm
echo "main: reports in reports/*/report.md, models in models/" >&2
