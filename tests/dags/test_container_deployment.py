"""The Celery deployment with every Airflow component in a container of the basket image
(the image test builds it): configured by environment variables only, as compose.yaml
configures it, against the machine's PostgreSQL and Redis; both DAGs run to success on
two container workers."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from test_deployments import SCHEDULES, by_task, deployment_run, partition

from basket.serving.batch import score_users
from basket.testing.container_airflow import ContainerAirflowDeployment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def container_run(synth_dir, tiny_config, postgres_and_redis, image) -> dict:
    db_url, broker_url, prefix = postgres_and_redis
    # Outside pytest's own (owner-only) folders: mounted into containers whose user is uid 1000.
    root = Path(tempfile.mkdtemp(prefix="basket-container-airflow-", dir="/tmp"))
    root.chmod(0o777)
    airflow = ContainerAirflowDeployment(
        root / "airflow_home",
        db_url=db_url,
        broker_url=broker_url,
        workers=("box-a", "box-b"),
        settings={
            **SCHEDULES,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix,
        },
        image=image["name"],
        shared=root,
    )
    try:
        with airflow:
            yield deployment_run(root, airflow, synth_dir, tiny_config)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_image_runs_the_celery_deployment_and_both_dags_succeed(container_run, tmp_path):
    runs = container_run["retrain"] + container_run["batch"]
    assert [run["state"] for run in runs] == ["success"] * 4
    retrain = by_task(container_run["retrain_tasks"])
    assert retrain[("load_store", -1)]["state"] == "success"
    ran = [ti for ti in container_run["retrain_tasks"] if ti["state"] == "success"]
    assert {ti["hostname"] for ti in ran} <= {"box-a", "box-b"}
    shards = [ti for ti in container_run["batch_tasks"][1] if ti["task_id"] == "score_shard"]
    assert {ti["hostname"] for ti in shards} == {"box-a", "box-b"}
    root = container_run["root"]
    expected = score_users(root / "store" / "basket.mar", root / "data", tmp_path / "all.parquet")
    pd.testing.assert_frame_equal(
        partition(root / "recommendations"), pd.read_parquet(expected.out_path)
    )
