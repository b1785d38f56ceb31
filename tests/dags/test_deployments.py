"""The DAGs under real Airflow deployments, as a user runs them (`scripts/airflow_cluster.sh`):

- the embedded default: scheduler, dag-processor, api-server and triggerer, LocalExecutor,
  SQLite, settings from Variables, both DAGs unpaused and left to the scheduler;
- scale-out: the same with the CeleryExecutor, PostgreSQL and Redis, and two Celery workers.

Each deployment runs once per module (a few minutes each); the tests read what it did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from basket.serving.batch import score_users
from basket.testing.airflow_deployment import AirflowDeployment

pytestmark = pytest.mark.slow
# Once a year: unpausing still creates the latest scheduled run of each DAG at once, but no
# new tick can land while a test runs (a CI run across 06:00 UTC got a fourth batch run from
# the daily default).
SCHEDULES = {
    "AIRFLOW_VAR_BASKET_RETRAIN_SCHEDULE": "0 2 1 1 *",
    "AIRFLOW_VAR_BASKET_SCORE_SCHEDULE": "0 6 1 1 *",
}


def deployment_run(root: Path, airflow: AirflowDeployment, synth_dir, tiny_config) -> dict:
    """What a new user does: Variables, unpause both DAGs, let the scheduler work; then a
    triggered batch run whose conf overrides a Variable. Returns what a test looks at."""
    shutil.copytree(synth_dir, root / "data")
    (root / "tiny.json").write_text(json.dumps(tiny_config))
    # Readable and writable by whoever runs the tasks (the image's uid 1000 in containers).
    for path in (root, *root.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    folders = {"data_dir": "data", "runs_dir": "runs", "model_store": "store",
               "recommendations_dir": "recommendations", "config": "tiny.json"}  # fmt: skip
    variables = {f"basket_{name}": str(root / path) for name, path in folders.items()}
    airflow.set_variables({**variables, "basket_users_per_shard": "40"})
    airflow.cli("dags", "unpause", "basket_batch_score")
    airflow.cli("dags", "unpause", "basket_retrain")
    retrain = airflow.wait_for_runs("basket_retrain", 1)
    # The batch DAG's own schedule ran first (nothing in production yet), then the asset run.
    batch = airflow.wait_for_runs("basket_batch_score", 2)
    override = root / "recommendations_from_conf"
    conf = json.dumps({"recommendations_dir": str(override)})
    airflow.cli("dags", "trigger", "basket_batch_score", "--conf", conf)
    batch = airflow.wait_for_runs("basket_batch_score", 3)
    return {
        "root": root,
        "retrain": retrain,
        "batch": batch,
        "retrain_tasks": airflow.task_instances("basket_retrain", retrain[0]["run_id"]),
        "batch_tasks": [airflow.task_instances("basket_batch_score", r["run_id"]) for r in batch],
        "override": override,
        "logs": airflow.home / "logs",
        "heartbeat_s": airflow.cli("config", "get-value", "workers", "min_heartbeat_interval"),
    }


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, synth_dir, tiny_config) -> dict:
    root = tmp_path_factory.mktemp("local_deployment")
    with AirflowDeployment(root / "airflow_home", settings=SCHEDULES) as airflow:
        return deployment_run(root, airflow, synth_dir, tiny_config)


@pytest.fixture(scope="module")
def celery_run(tmp_path_factory, synth_dir, tiny_config, postgres_and_redis) -> dict:
    db_url, broker_url, prefix = postgres_and_redis
    root = tmp_path_factory.mktemp("celery_deployment")
    airflow = AirflowDeployment(
        root / "airflow_home",
        db_url=db_url,
        broker_url=broker_url,
        workers=("worker-a", "worker-b"),
        # Every Celery key of this test under its own prefix, removed afterwards.
        settings={
            **SCHEDULES,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix,
        },
    )
    with airflow:
        return deployment_run(root, airflow, synth_dir, tiny_config)


def by_task(instances: list[dict]) -> dict[tuple[str, int], dict]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in instances}


def partition(folder: Path) -> pd.DataFrame:
    [path] = folder.glob("run_date=*/recommendations.parquet")
    return pd.read_parquet(path)


TRAINERS = ["train_cnngru", "train_attentiongru", "train_xgboost", "train_references"]


def test_the_scheduled_retrain_runs_every_task_and_trains_in_parallel(local_run):
    [run] = local_run["retrain"]
    tasks = by_task(local_run["retrain_tasks"])
    assert run["run_type"] == "scheduled" and run["state"] == "success"
    assert run["run_id"].startswith("scheduled__")
    assert {key[0]: ti["state"] for key, ti in tasks.items()} == {
        **dict.fromkeys(["validate", "load_store", "prepare", "embed", *TRAINERS], "success"),
        **dict.fromkeys(["compare", "package", "publish"], "success"),
        "register": "skipped",  # no basket_management_url: no TorchServe to update
    }
    trainers = [tasks[(name, -1)] for name in TRAINERS]
    last_start = max(pd.Timestamp(ti["start_date"]) for ti in trainers)
    first_end = min(pd.Timestamp(ti["end_date"]) for ti in trainers)
    assert last_start < first_end, "the four training tasks did not overlap in time"


def test_variables_place_the_run_and_basket_mar(local_run):
    root = local_run["root"]
    store = root / "store"
    production = json.loads((store / "production.json").read_text())
    assert (store / "basket.mar").read_bytes() == (
        store / f"basket-{production['version']}.mar"
    ).read_bytes()
    [report] = (root / "runs").glob("*/report.json")
    assert report.parent.name.startswith("scheduled__")
    assert json.loads(report.read_text())["winner"] == production["version"].split("-")[0]


def test_a_fresh_deployment_skips_batch_scoring_until_a_model_is_published(local_run):
    first = local_run["batch"][0]
    tasks = by_task(local_run["batch_tasks"][0])
    assert first["run_type"] == "scheduled" and first["state"] == "success"
    assert tasks[("validate", -1)]["state"] == "success"
    assert tasks[("plan_shards", -1)]["state"] == "skipped"
    assert tasks[("plan_shards", -1)]["try_number"] == 1  # skipped, not retried
    logs = local_run["logs"].glob(f"dag_id=basket_batch_score/run_id={first['run_id']}/"
                                  "task_id=plan_shards/*.log")  # fmt: skip
    assert any("nothing to score with yet" in path.read_text() for path in logs)


def test_the_published_model_triggers_batch_scoring_equal_to_basket_score(local_run, tmp_path):
    run = local_run["batch"][1]
    tasks = by_task(local_run["batch_tasks"][1])
    assert run["run_type"] == "asset_triggered" and run["state"] == "success"
    assert len([key for key in tasks if key[0] == "score_shard"]) >= 3
    root = local_run["root"]
    expected = score_users(root / "store" / "basket.mar", root / "data", tmp_path / "all.parquet")
    pd.testing.assert_frame_equal(
        partition(root / "recommendations"), pd.read_parquet(expected.out_path)
    )


def test_a_trigger_conf_overrides_the_variable(local_run):
    run = local_run["batch"][2]
    assert run["run_type"] == "manual" and run["state"] == "success"
    pd.testing.assert_frame_equal(
        partition(local_run["override"]), partition(local_run["root"] / "recommendations")
    )


def test_celery_workers_share_the_tasks_and_the_shards(celery_run):
    tasks = celery_run["retrain_tasks"] + [ti for run in celery_run["batch_tasks"] for ti in run]
    assert [run["state"] for run in celery_run["retrain"] + celery_run["batch"]] == ["success"] * 4
    ran = [ti for ti in tasks if ti["state"] == "success"]
    assert {ti["hostname"] for ti in ran} == {"worker-a", "worker-b"}
    shards = [ti for ti in celery_run["batch_tasks"][1] if ti["task_id"] == "score_shard"]
    assert {ti["hostname"] for ti in shards} == {"worker-a", "worker-b"}


def test_task_supervisors_notice_a_finished_task_within_a_second(celery_run, local_run):
    """Airflow's default lets a task's supervisor sleep up to 5 s after the task has closed its
    sockets (pinned to one core, every second batch shard took 5 s longer than its work): both
    deployments the cluster script starts bound that wait to 1 s."""
    assert celery_run["heartbeat_s"].strip() == local_run["heartbeat_s"].strip() == "1"


def test_celery_outputs_equal_the_local_executors(celery_run, local_run):
    """Same data, same config: the same recommendations (the version's timestamp aside)."""
    ignore = ["model_version"]
    pd.testing.assert_frame_equal(
        partition(celery_run["root"] / "recommendations").drop(columns=ignore),
        partition(local_run["root"] / "recommendations").drop(columns=ignore),
    )
    local, celery = (
        json.loads(next((run["root"] / "runs").glob("*/report.json")).read_text())
        for run in (local_run, celery_run)
    )
    assert celery["winner"] == local["winner"]
    assert celery["candidates"] == local["candidates"]
