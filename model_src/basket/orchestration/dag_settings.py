"""What the Airflow DAGs share: settings and their defaults, the asset, the validate step.

Imported when a DAG file is parsed, so it stays light: Airflow and nothing of the
pipeline. What tasks need of the pipeline besides a stage function (the run config, the
validation step) is in `basket.orchestration.dag_steps`, which the tasks import when they run.

Every path a DAG task uses is resolved the same way, first hit wins:

1. the DAG run's param (`airflow dags trigger --conf '{"data_dir": ...}'`, `dag.test(run_conf=...)`);
2. the Airflow Variable `basket_<name>` (also settable as the environment variable
   `AIRFLOW_VAR_BASKET_<NAME>`);
3. the default below (the folders `make run` uses, under $BASKET_HOME or the current
   directory).

Schedules are read when the DAG file is parsed, from `AIRFLOW_VAR_BASKET_RETRAIN_SCHEDULE`
and `AIRFLOW_VAR_BASKET_SCORE_SCHEDULE` (environment-defined Variables, so parsing never
queries the metadata database).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pendulum
from airflow.sdk import Param, Variable, get_current_context

from basket.config.serving import BatchConfig, RequestLimits

# The default folders live under $BASKET_HOME, else the current directory (the checkout, for
# `make run` and `make airflow`, which start there); an installed deployment sets Variables.
HOME = Path(os.environ.get("BASKET_HOME") or Path.cwd()).resolve()

# The asset the retrain DAG updates when it promotes a model; batch scoring runs on it.
PRODUCTION_MODEL_ASSET = "basket_production_model"

DEFAULTS = {
    "data_dir": str(HOME / "runs" / "demo" / "data"),
    "runs_dir": str(HOME / "runs" / "airflow"),
    "model_store": str(HOME / "model_store"),
    "recommendations_dir": str(HOME / "runs" / "recommendations"),
    "config": "",
    # Run settings on top of the config file: a JSON object {"xgboost.rounds": 200} of any
    # setting of the docs' settings table (basket.config.settings).
    "settings": "",
    # A TorchServe management API to load each promoted model into; empty: none.
    "management_url": "",
    # The history store the retrain DAG loads (sqlite:///PATH or redis://…); empty: the SQLite
    # file histories.sqlite in model_store.
    "store_url": "",
    "k": str(RequestLimits.default_k),  # products per customer in batch scoring
    "users_per_shard": str(BatchConfig.users_per_shard),
}
SCHEDULES = {
    "retrain": os.environ.get("AIRFLOW_VAR_BASKET_RETRAIN_SCHEDULE", "0 2 * * *"),
    "score": os.environ.get("AIRFLOW_VAR_BASKET_SCORE_SCHEDULE", "0 6 * * *"),
}


def resolve_settings(
    params: dict, run_id: str, get_variable: Callable[[str], str | None]
) -> dict[str, str]:
    """Every setting of `DEFAULTS` for one DAG run, plus `run_dir` (RUNS_DIR/<run id>)."""
    settings = {}
    for name, default in DEFAULTS.items():
        value = params.get(name)
        if value in (None, ""):
            value = get_variable(f"basket_{name}")
        settings[name] = str(default if value in (None, "") else value)
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    settings["run_dir"] = str(Path(settings["runs_dir"]) / safe_run_id)
    return settings


def worker_hostname() -> str:
    """The host name a task records (Airflow's `[core] hostname_callable`): BASKET_WORKER_NAME
    when set, so several Celery workers on one host stay apart, else the host's FQDN."""
    return os.environ.get("BASKET_WORKER_NAME") or socket.getfqdn()


def task_settings() -> dict[str, str]:
    """`resolve_settings` for the task that is running (inside an Airflow task only)."""
    context = get_current_context()
    return resolve_settings(
        context["params"], context["run_id"], lambda key: Variable.get(key, default=None)
    )


def dag_arguments() -> dict:
    """What both DAGs pass to `@dag` besides their id, schedule and docs."""
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["basket"],
        # Empty by default: Airflow merges Param defaults into every run's params, so a
        # non-empty default would always win over the Variable (issue 12).
        "params": {
            name: Param(
                None,
                type=["null", "string"],
                description=f"empty: the Variable basket_{name}, else {default!r}",
            )
            for name, default in DEFAULTS.items()
        },
    }
