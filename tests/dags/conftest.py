"""Airflow for the DAG tests: its own AIRFLOW_HOME with a fresh SQLite metadata DB.

The environment is set when this file is imported, before any test imports
Airflow (which reads its configuration once, at import).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="basket-airflow-"))
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
os.environ.update(
    AIRFLOW_HOME=str(AIRFLOW_HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
)


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    """A run config that trains every candidate in seconds on the 300-customer data."""
    return TINY_CONFIG


TINY_CONFIG = {
    "train": {"epochs": 1, "batch_size": 64, "targets_per_user": 1, "pos_weights": [5.0]},
    "predictor": {"order_hidden": 32},
    "embed": {"epochs": 3},
    "xgboost": {"rounds": 40, "targets_per_user": 1},
}


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """`airflow db migrate` into the test AIRFLOW_HOME (about 3 s)."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO / "dags"))
