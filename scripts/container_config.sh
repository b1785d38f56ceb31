#!/usr/bin/env bash
# The Docker image's TorchServe config, made from the repo's config.properties:
#   scripts/container_config.sh config.properties > config.container.properties
# Secure by default: inference and metrics listen on every interface of the container (publish
# them), token authorization is on (keys in key_file.json in the server's working directory),
# the management API listens on the container's loopback only and cannot register models,
# and model URLs are restricted to the model store. See docs/deployment.md to open
# the management API deliberately.
set -euo pipefail
sed -e 's#^inference_address=.*#inference_address=http://0.0.0.0:8080#' \
  -e 's#^metrics_address=.*#metrics_address=http://0.0.0.0:8082#' \
  -e 's#^management_address=.*#management_address=http://127.0.0.1:8081#' \
  -e 's#^model_store=.*#model_store=/app/model_store#' \
  -e '/^disable_token_authorization=/d' \
  -e 's#^enable_model_api=.*#enable_model_api=false#' \
  "${1:?usage: scripts/container_config.sh CONFIG_PROPERTIES}"
printf '\n# Only archives in the model store may be loaded.\nallowed_urls=file:///app/model_store/.*\n'
