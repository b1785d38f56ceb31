#!/usr/bin/env bash
# Creates the virtual environment VENV with basket installed: the one set of install steps,
# used by the Makefile (`make venv`) and the Dockerfile, so the two cannot drift.
# Usage: scripts/install.sh VENV [EXTRAS]     e.g. scripts/install.sh .venv dev
# torch comes first, pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
# TORCH_INDEX_URL (optional) is where pip finds that CPU build when it is not on local disk
# (the Docker image sets https://download.pytorch.org/whl/cpu).
set -euo pipefail
VENV=${1:?usage: scripts/install.sh VENV [EXTRAS]}
EXTRAS=${2:-}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0
"$VENV/bin/pip" install --quiet -e ".${EXTRAS:+[$EXTRAS]}"
# TorchServe 0.12 reads model_store from config.properties only through TS_CONFIG_FILE.
grep -q TS_CONFIG_FILE "$VENV/bin/activate" ||
  echo "export TS_CONFIG_FILE=\"$PWD/config.properties\"  # basket: TorchServe reads model_store here" >> "$VENV/bin/activate"
