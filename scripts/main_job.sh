#!/usr/bin/env bash
# The main job (`make run`): synthetic data → validation → the nightly retrain DAG →
# the batch-scoring DAG → the recommendations → TorchServe serving one real answer.
# Both DAGs run for real through `airflow dags test`, on Airflow's SQLite metadata DB in
# airflow_home/. Usage: scripts/main_job.sh [RUN_DIR] [USERS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=$(realpath -m "${1:-runs/demo}")
USERS=${2:-2000}
SEED=${3:-0}
BIN=.venv/bin
export AIRFLOW_HOME="$PWD/airflow_home"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
CONF="{\"data_dir\": \"$RUN_DIR/data\"}"

"$BIN/basket" synth --users "$USERS" --seed "$SEED" --out "$RUN_DIR/data"
"$BIN/basket" validate "$RUN_DIR/data" --report "$RUN_DIR/validation"
"$BIN/airflow" db migrate > "$RUN_DIR/airflow_db.log" 2>&1

run_dag() {  # run_dag DAG_ID: `airflow dags test`, log to a file, fail if the run failed
  local log="$RUN_DIR/$1.log"
  echo "== airflow dags test $1 (about ${2}; full log: $log)"
  "$BIN/airflow" dags test "$1" --conf "$CONF" > "$log" 2>&1 || true
  grep -E "\[DAG TEST\] end task|publish: |DagRun Finished" "$log" \
    | sed -E 's/.*(task_id=[a-z_]+ map_index=-?[0-9]+).*/  \1 done/; s/.*(publish: [^[]*).*/  \1/; s/.*(DagRun Finished).*(state=[a-z]+).*/  \1: \2/'
  grep -q "DagRun Finished.*state=success" "$log" || { echo "$1 failed; see $log" >&2; exit 1; }
}
run_dag basket_retrain "6 minutes"
latest_run=$(ls -td runs/airflow/*/ | head -1)
sed -n 1,12p "$latest_run/report.md"
run_dag basket_batch_score "20 seconds"
"$BIN/python" - <<'PY'
import pandas as pd
from basket.orchestration.dag_settings import DEFAULTS
dataset = pd.read_parquet(DEFAULTS["recommendations_dir"])
dataset["run_date"] = dataset["run_date"].astype(str)  # a hive partition reads as categorical
latest = dataset[dataset["run_date"] == dataset["run_date"].max()]
print(f"== recommendations: {DEFAULTS['recommendations_dir']} ({len(latest):,} rows, "
      f"{latest['user_id'].nunique():,} customers, run_date {latest['run_date'].max()})")
print(latest.head(10).to_string(index=False))
PY
bash scripts/serve_demo.sh
