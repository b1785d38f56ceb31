"""Airflow for the DAG tests: its own AIRFLOW_HOME with a fresh SQLite metadata DB.

The environment is set when this file is imported, before any test imports
Airflow (which reads its configuration once, at import).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
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
    "ranker_search": {"seconds": 0},  # the settings as given (tests/test_retrain.py searches)
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


POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
BROKER = f"redis://{REDIS[0]}:{REDIS[1]}/0"


def reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def postgres_and_redis() -> tuple[str, str, str]:
    """(metadata DB URL of a fresh PostgreSQL database, Redis broker URL, the key prefix of this
    test's Celery keys); both removed afterwards. Required in CI; skipped elsewhere when not
    running."""
    missing = [f"{name} on {host}:{port}" for name, (host, port) in
               {"PostgreSQL": POSTGRES, "Redis": REDIS}.items() if not reachable((host, port))]  # fmt: skip
    if missing:
        message = f"{' and '.join(missing)} not reachable: the Celery deployment test needs them"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must start them; see docs/development.md)")
        pytest.skip(message)
    import psycopg2
    import redis

    database = f"basket_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    prefix = f"{database}:"
    try:
        yield (
            f"postgresql+psycopg2://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{database}",
            BROKER,
            prefix,
        )
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
        broker = redis.Redis(*REDIS)
        for key in broker.scan_iter(f"{prefix}*"):
            broker.delete(key)
