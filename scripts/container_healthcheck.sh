#!/usr/bin/env bash
# The image's HEALTHCHECK: /ping with the inference key (token authorization is on, and
# TorchServe then refuses even /ping without it). Run in the server's working directory.
set -euo pipefail
key=$(python3 -c 'import json; print(json.load(open("key_file.json"))["inference"]["key"])')
curl -fsS -H "Authorization: Bearer $key" http://127.0.0.1:8080/ping
