#!/usr/bin/env bash
# The serving commands of docs/serving.md, run as typed: start TorchServe on model_store/basket.mar
# with the history store the retrain DAG loaded (model_store/histories.sqlite), show a real
# answer to a full history and to a customer id alone, stop the server. Needs `make venv`, a
# packaged basket.mar and a loaded store (`make run` makes both).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .venv/bin/activate   # exports TS_CONFIG_FILE=<repo>/config.properties

if curl -s -o /dev/null http://127.0.0.1:8080/ping; then
  echo "serve_demo: something already listens on 127.0.0.1:8080 (another TorchServe? try 'torchserve --stop')" >&2
  exit 1
fi
mkdir -p logs
export BASKET_STORE_URL=${BASKET_STORE_URL:-sqlite:///$PWD/model_store/histories.sqlite}
torchserve --start --ncs --models basket.mar > logs/serve_demo.out 2>&1
echo "TorchServe started (console output: logs/serve_demo.out)"
trap 'torchserve --stop >/dev/null' EXIT

for _ in $(seq 180); do
  if curl -s http://127.0.0.1:8081/models/basket | grep -q '"status": "READY"'; then break; fi
  sleep 1
done

echo "POST /predictions/basket (a whole history):"
curl -s -X POST http://127.0.0.1:8080/predictions/basket -H 'Content-Type: application/json' \
  -d '[["Organic Strawberries"], ["Organic Baby Spinach", "Organic Hass Avocado", "Organic Strawberries"], ["Organic Whole Milk"]]'
echo
echo "POST /predictions/basket {\"user_id\": 1} (the history from $BASKET_STORE_URL):"
curl -s -X POST http://127.0.0.1:8080/predictions/basket -H 'Content-Type: application/json' \
  -d '{"user_id": 1}'
echo
