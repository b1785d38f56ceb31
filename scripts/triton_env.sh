#!/usr/bin/env bash
# Creates .venv-triton: NVIDIA's PyTriton wheel (a real tritonserver 2.51 with the Python
# backend, CPU only) and tritonclient, beside what basket's model code imports. Its own
# environment because nvidia-pytriton 0.7.0 requires numpy<2. basket itself is not
# installed there: the exported repository carries its source.
# Usage: scripts/triton_env.sh [VENV]   (default .venv-triton; about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-triton}
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0
"$VENV/bin/pip" install --quiet "nvidia-pytriton==0.7.0" "tritonclient[http]>=2.50" \
  "numpy<2" pandas "pyarrow<21" "xgboost-cpu>=3.2,<4" pyyaml tqdm "redis>=5,<9"   # pyarrow 21+ needs numpy 2; redis: the history store
# The server runs in place: put the Python backend stub for this interpreter where Triton looks.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
VERSION=$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
cp "$SITE/pytriton/tritonserver/python_backend_stubs/$VERSION/triton_python_backend_stub" \
  "$SITE/pytriton/tritonserver/backends/python/triton_python_backend_stub"
touch "$VENV/.installed"
