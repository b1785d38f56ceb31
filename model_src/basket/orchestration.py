"""What the Airflow DAGs share, without importing Airflow: settings, their defaults, the asset.

Every path a DAG task uses is resolved the same way, first hit wins:

1. the DAG run's param (`airflow dags trigger --conf '{"data_dir": ...}'`, `dag.test(run_conf=...)`);
2. the Airflow Variable `basket_<name>` (also settable as the environment variable
   `AIRFLOW_VAR_BASKET_<NAME>`);
3. the repo's default below (the folders `make run` uses).

Schedules are read when the DAG file is parsed, from `AIRFLOW_VAR_BASKET_RETRAIN_SCHEDULE`
and `AIRFLOW_VAR_BASKET_SCORE_SCHEDULE` (environment-defined Variables, so parsing never
queries the metadata database).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The asset the retrain DAG updates when it promotes a model; batch scoring runs on it.
PRODUCTION_MODEL_ASSET = "basket_production_model"

DEFAULTS = {
    "data_dir": str(REPO_ROOT / "runs" / "demo" / "data"),
    "runs_dir": str(REPO_ROOT / "runs" / "airflow"),
    "model_store": str(REPO_ROOT / "model_store"),
    "recommendations_dir": str(REPO_ROOT / "runs" / "recommendations"),
    "config": "",
    "management_url": "http://127.0.0.1:8081",
    "k": "10",
    "users_per_shard": "50000",
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


def run_config(settings: dict):
    """The `RunConfig` of a DAG run: the `config` file when one is set, else the defaults."""
    from basket.config import load_config

    return load_config(settings["config"] or None)
