#!/usr/bin/env bash
# Starts a real Airflow deployment for basket's DAGs and keeps it running until Ctrl-C (or
# SIGTERM), which stops every component it started.
#
#   scripts/airflow_cluster.sh                  the embedded default (`make airflow`): scheduler,
#                                               dag-processor, api-server and triggerer with the
#                                               LocalExecutor on SQLite in airflow_home/
#   scripts/airflow_cluster.sh COMPONENT...     only these: scheduler dag-processor api-server
#                                               triggerer worker (a Celery worker)
#   scripts/airflow_cluster.sh airflow ARGS...  the airflow CLI against the same deployment
#                                               (variables set, dags unpause, dags trigger, ...)
#
# Scale-out: set BASKET_AIRFLOW_BROKER and BASKET_AIRFLOW_DB and the same components run with
# the CeleryExecutor; start `scripts/airflow_cluster.sh worker` on every worker host (same
# DB, broker, dags/ and secrets file; see docs/deployment.md, "Scale-out").
#
# Settings (environment; defaults in brackets):
#   AIRFLOW_HOME                 [<repo>/airflow_home]
#   BASKET_AIRFLOW_DB            metadata DB URL [sqlite:///$AIRFLOW_HOME/airflow.db]
#   BASKET_AIRFLOW_BROKER        Celery broker URL, e.g. redis://127.0.0.1:6379/0 [none: LocalExecutor]
#   BASKET_AIRFLOW_HOST          api-server address [127.0.0.1]
#   BASKET_AIRFLOW_PORT          api-server port [8090; TorchServe has 8080]
#   BASKET_AIRFLOW_API_URL       where tasks reach the api-server [http://HOST:PORT]
#   BASKET_WORKER_NAME           Celery worker name, also recorded as its tasks' host [$(hostname)]
#   BASKET_WORKER_QUEUES         queues a worker takes [default,training,scoring]
#   BASKET_WORKER_CONCURRENCY    task slots per worker [2]
#   BASKET_AIRFLOW_SECRETS       file holding the shared JWT and API secrets, made once
#                                [$AIRFLOW_HOME/basket-secrets.env]; copy it to worker hosts.
#                                Not used when AIRFLOW__API_AUTH__JWT_SECRET and
#                                AIRFLOW__API__SECRET_KEY are set (containers: compose.yaml),
#                                which then needs AIRFLOW__CORE__FERNET_KEY set as well
#   VENV                         the virtual environment with basket installed [<repo>/.venv]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export AIRFLOW_HOME=${AIRFLOW_HOME:-$REPO/airflow_home}
VENV=${VENV:-$REPO/.venv}
# Airflow starts some of its parts as `airflow …` by name: the venv's bin/ goes first on PATH.
export PATH="$VENV/bin:$PATH"
HOST=${BASKET_AIRFLOW_HOST:-127.0.0.1}
PORT=${BASKET_AIRFLOW_PORT:-8090}
API_URL=${BASKET_AIRFLOW_API_URL:-http://$HOST:$PORT}
SECRETS=${BASKET_AIRFLOW_SECRETS:-$AIRFLOW_HOME/basket-secrets.env}
mkdir -p "$AIRFLOW_HOME"

# The scheduler signs each task's token and the api-server checks it: every component, on
# every host, must share one secret. From the environment when it has them (containers),
# else from a file made once, readable by its owner only.
if [ -n "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ] && [ -n "${AIRFLOW__API__SECRET_KEY:-}" ]; then
  # Components that do not share an AIRFLOW_HOME (containers) must share the Fernet key too:
  # each would otherwise make its own, and Variables set through one are unreadable by the
  # others, so tasks silently fall back to the default settings.
  if [ -z "${AIRFLOW__CORE__FERNET_KEY:-}" ]; then
    echo "airflow_cluster: AIRFLOW__API_AUTH__JWT_SECRET is set but AIRFLOW__CORE__FERNET_KEY is not: every component needs the same Fernet key" >&2
    exit 2
  fi
  SECRETS=/dev/null
elif [ ! -f "$SECRETS" ]; then
  (
    umask 077
    printf 'AIRFLOW__API_AUTH__JWT_SECRET=%s\nAIRFLOW__API__SECRET_KEY=%s\n' \
      "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" \
      "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" >"$SECRETS"
  )
fi
set -a
# shellcheck disable=SC1090
. "$SECRETS"
set +a

export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
# Where the DAGs' default folders (runs/, model_store/) live when no Variable says otherwise.
export BASKET_HOME=${BASKET_HOME:-$REPO}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${BASKET_AIRFLOW_DB:-sqlite:///$AIRFLOW_HOME/airflow.db}
export AIRFLOW__API__HOST=$HOST AIRFLOW__API__PORT=$PORT AIRFLOW__API__BASE_URL=$API_URL
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$API_URL/execution/"
# A task's supervisor waits in select() up to this many seconds between heartbeats, and once
# the task has closed its sockets nothing wakes it: on a busy core it noticed the task's exit
# up to 5 s (Airflow's default) late, every second task or so (measured: workers pinned to a
# core, batch shards of 5-7 s taking 10-12 s). 1 s bounds that wait; a heartbeat a second per
# running task is little load for the api-server.
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=${AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL:-1}
if [ -n "${BASKET_AIRFLOW_BROKER:-}" ]; then
  export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
  export AIRFLOW__CELERY__BROKER_URL=$BASKET_AIRFLOW_BROKER
  # Celery's result backend is the metadata DB itself ("db+" + its SQLAlchemy URL).
  export AIRFLOW__CELERY__RESULT_BACKEND="db+${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}"
  export AIRFLOW__CELERY__WORKER_CONCURRENCY=${BASKET_WORKER_CONCURRENCY:-2}
else
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
fi

# `scripts/airflow_cluster.sh airflow ARGS…`: the airflow CLI against this deployment.
if [ "${1:-}" = airflow ]; then
  shift
  exec airflow "$@"
fi

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(scheduler dag-processor api-server triggerer)

# Each component runs in its own process group (setsid), so Ctrl-C reaches this script only.
# It sends SIGTERM to each component's main process, which stops its own children, and
# SIGKILLs what is left of each group after STOP_GRACE_S seconds. (A signal sent to the
# scheduler's children as well, by a terminal or to the group, leaves it hanging.)
pids=()
stop() {
  trap - INT TERM EXIT
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq "${STOP_GRACE_S:-30}"); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "airflow_cluster: stopped ${components[*]}"
}
trap stop INT TERM EXIT

for component in "${components[@]}"; do
  if [ "$component" != worker ]; then
    airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 ||
      { cat "$AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
    break
  fi
done

for component in "${components[@]}"; do
  case $component in
  scheduler | dag-processor | triggerer) setsid airflow "$component" & ;;
  api-server) setsid airflow api-server --host "$HOST" --port "$PORT" & ;;
  worker)
    # A named worker records its name as the tasks' host (the UI fetches logs from there).
    [ -z "${BASKET_WORKER_NAME:-}" ] ||
      export AIRFLOW__CORE__HOSTNAME_CALLABLE=basket.orchestration.dag_settings.worker_hostname
    # Every task runs in a process forked from the worker: the worker imports the batch
    # path (pandas, pyarrow, xgboost, torch) once at start, so a shard does not pay 3-4 s
    # for it every time. Set AIRFLOW__CELERY__EXTRA_CELERY_CONFIG='{}' to import nothing.
    export AIRFLOW__CELERY__EXTRA_CELERY_CONFIG=${AIRFLOW__CELERY__EXTRA_CELERY_CONFIG:-'{"imports": ["basket.serving.batch", "basket.orchestration.publish"]}'}
    setsid airflow celery worker --celery-hostname "${BASKET_WORKER_NAME:-$(hostname)}" \
      --queues "${BASKET_WORKER_QUEUES:-default,training,scoring}" &
    ;;
  *) echo "airflow_cluster: unknown component '$component'" >&2 && exit 2 ;;
  esac
  pids+=($!)
done

echo "airflow_cluster: ${components[*]} running (executor $AIRFLOW__CORE__EXECUTOR, AIRFLOW_HOME $AIRFLOW_HOME)"
if [[ " ${components[*]} " == *" api-server "* ]]; then
  passwords="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
  for _ in $(seq 120); do
    python3 -c "import urllib.request as u; u.urlopen('$API_URL/api/v2/monitor/health', timeout=2)" \
      2>/dev/null && break
    sleep 1
  done
  echo "airflow_cluster: UI at $API_URL  login: $(cat "$passwords" 2>/dev/null || echo 'see the api-server log')"
fi
echo "airflow_cluster: Ctrl-C stops it"
# Any component exiting brings the deployment down rather than leaving it half-running.
wait -n "${pids[@]}"
echo "airflow_cluster: a component exited; stopping the rest" >&2
exit 1
