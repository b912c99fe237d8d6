#!/usr/bin/env bash
# Set up the PyTorch environment (first run only) and run the demo: a U-Net trained on the
# built-in generated `shapes` data, with plots and metrics written to ./umodels-demo.
# Extra arguments go to `umodels demo` (see `umodels demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh torch
KERAS_BACKEND=torch exec .venv-torch/bin/umodels demo "$@"
