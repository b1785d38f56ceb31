#!/usr/bin/env bash
# The Triton image's command: export the model store's basket.mar as a Triton repository (with
# the archive's serving settings), make an inference key, and run tritonserver in the
# foreground. Secure by default like the TorchServe image: every API but health and metrics
# needs `Authorization: Bearer <key>` (the key is in /app/serve/key_file.json, or
# BASKET_INFERENCE_KEY), gRPC is off, and models cannot be loaded through the API.
set -euo pipefail
VENV=${VENV:-/app/.venv-triton}
MODEL_STORE=${BASKET_MODEL_STORE:-/app/model_store}
SERVE=${BASKET_SERVE_DIR:-/app/serve}
PY="$VENV/bin/python"
PYTHONPATH=/app/model_src "$PY" -m basket.serving.triton.export "$MODEL_STORE/basket.mar" "$SERVE/repository"
KEY=${BASKET_INFERENCE_KEY:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')}
(umask 077 && printf '{"inference": {"key": "%s"}}\n' "$KEY" > "$SERVE/key_file.json")
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
LIBDIR=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
SERVER="$SITE/pytriton/tritonserver"
# The backend stub embeds libpython: it needs the interpreter's libdir and the venv's packages.
export LD_LIBRARY_PATH="$SITE/nvidia_pytriton.libs:$LIBDIR" PYTHONPATH="$SITE" PATH="$VENV/bin:$PATH"
exec "$SERVER/bin/tritonserver" --model-repository="$SERVE/repository" \
  --backend-directory="$SERVER/backends" --cache-directory="$SERVER/caches" \
  --http-port=8000 --metrics-port=8002 --allow-grpc=false \
  --http-restricted-api="inference,model-repository,model-config,shared-memory,statistics,trace,logging:authorization=Bearer $KEY"
