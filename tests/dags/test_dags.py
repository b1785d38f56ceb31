"""The Airflow DAGs: task graphs, and real `dag.test()` runs on tiny synthetic data."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pendulum
import pytest

from basket.serving.batch import opened_model_dir, score_users
from basket.serving.online import OnlineScorer
from basket.serving.store.connect import default_store_url, open_store


def test_dagbag_imports_with_the_expected_task_graphs(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) >= {"basket_retrain", "basket_batch_score"}
    retrain = {t.task_id: t.downstream_task_ids for t in dagbag.dags["basket_retrain"].tasks}
    trainers = {"train_cnngru", "train_attentiongru", "train_xgboost", "train_references"}
    assert retrain["validate"] == {"prepare", "load_store"} and retrain["prepare"] == {"embed"}
    assert (
        retrain["load_store"] == set()
        and dagbag.dags["basket_retrain"].get_task("load_store").retries == 2
    )
    assert retrain["embed"] == trainers
    assert all(retrain[name] == {"compare"} for name in trainers)
    assert retrain["compare"] == {"package"} and retrain["package"] == {"publish"}
    assert retrain["publish"] == {"register"} and retrain["register"] == set()
    assert all(dagbag.dags["basket_retrain"].get_task(t).retries == 2 for t in trainers)
    assert {dagbag.dags["basket_retrain"].get_task(t).queue for t in trainers} == {"training"}
    assert dagbag.dags["basket_retrain"].get_task("register").retries == 3
    score = {t.task_id: t.downstream_task_ids for t in dagbag.dags["basket_batch_score"].tasks}
    assert dagbag.dags["basket_batch_score"].get_task("score_shard").queue == "scoring"
    assert score == {
        "validate": {"plan_shards"},
        "plan_shards": {"score_shard"},
        "score_shard": {"merge"},
        "merge": set(),
    }
    publish = dagbag.dags["basket_retrain"].get_task("publish")
    assert [a.name for a in publish.outlets] == ["basket_production_model"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synth_dir, tiny_config):
    root = tmp_path_factory.mktemp("airflow_runs")
    shutil.copytree(synth_dir, root / "data")
    (root / "tiny.json").write_text(json.dumps(tiny_config))
    (root / "worse.json").write_text(
        json.dumps({**tiny_config, "models": ["cnngru"], "baselines": []})
    )
    return root


def conf(workspace, **changes) -> dict:
    settings = {
        "data_dir": str(workspace / "data"),
        "runs_dir": str(workspace / "runs"),
        "model_store": str(workspace / "model_store"),
        "recommendations_dir": str(workspace / "recommendations"),
        "config": str(workspace / "tiny.json"),
        "management_url": "",  # no TorchServe: registration is skipped
        "users_per_shard": "40",
    }
    return {**settings, **changes}


def states(run) -> dict[str, str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture(scope="module")
def published(dagbag, workspace):
    """One nightly retrain run: a model goes into production."""
    run = dagbag.dags["basket_retrain"].test(run_conf=conf(workspace))
    return run


@pytest.mark.slow
def test_retrain_dag_publishes_the_winner_as_basket_mar(published, workspace):
    assert str(published.state) == "success", states(published)
    store = workspace / "model_store"
    production = json.loads((store / "production.json").read_text())
    run_dirs = list((workspace / "runs").iterdir())
    winner = json.loads((run_dirs[0] / "winner" / "model.json").read_text())
    assert production["version"] == winner["version"]
    assert (store / "basket.mar").read_bytes() == (
        store / f"basket-{winner['version']}.mar"
    ).read_bytes()
    report = json.loads((run_dirs[0] / "report.json").read_text())
    assert report["winner"] == winner["name"] and set(report["candidates"]) == {
        "cnngru", "attentiongru", "xgboost", "p_topfreq", "tifu_knn", "blend"
    }  # fmt: skip


@pytest.mark.slow
def test_retrain_dag_loads_the_store_that_answers_ids_as_batch_scores_them(
    published, workspace, tmp_path
):
    """The store the nightly run loaded (default: histories.sqlite in the model store) holds
    every customer, and the published model answers `{"user_id": u}` from it with the row
    `basket score` writes for u."""
    url = default_store_url(workspace / "model_store")
    info = open_store(url).info()
    assert info.users == 300 and info.source == str((workspace / "data").resolve())
    mar = workspace / "model_store" / "basket.mar"
    frame = pd.read_parquet(score_users(mar, workspace / "data", tmp_path / "r.parquet").out_path)
    users = sorted(frame["user_id"].unique())[::40]
    with opened_model_dir(mar) as model_dir:
        scorer = OnlineScorer.from_model_dir(model_dir, store=open_store(url))
    for user, (status, answer) in zip(
        users, scorer.answer_batch([{"user_id": int(u)} for u in users]), strict=True
    ):
        row = frame[frame["user_id"] == user].sort_values("rank")
        assert status == 200 and answer["snapshot"] == info.version
        assert answer["product_ids"] == row["product_id"].tolist()


@pytest.mark.slow
def test_batch_score_dag_shards_and_merges_atomically_and_reruns_identically(
    published, dagbag, workspace, tmp_path
):
    dag = dagbag.dags["basket_batch_score"]
    first = dag.test(logical_date=pendulum.datetime(2026, 11, 24, 6), run_conf=conf(workspace))
    assert str(first.state) == "success", states(first)
    assert len([key for key in states(first) if key[0] == "score_shard"]) >= 3
    path = workspace / "recommendations" / "run_date=2026-11-24" / "recommendations.parquet"
    merged = pd.read_parquet(path)
    whole = score_users(
        workspace / "model_store" / "basket.mar", workspace / "data", tmp_path / "w.parquet"
    )
    pd.testing.assert_frame_equal(merged, pd.read_parquet(whole.out_path))
    before = path.read_bytes()

    again = dag.test(logical_date=pendulum.datetime(2026, 11, 24, 7), run_conf=conf(workspace))
    assert str(again.state) == "success"
    assert path.read_bytes() == before
    assert [p.name for p in (workspace / "recommendations").iterdir()] == ["run_date=2026-11-24"]
    dataset = pd.read_parquet(workspace / "recommendations")
    assert len(dataset) == len(merged)


@pytest.mark.slow
def test_corrupted_data_fails_at_validation_and_production_stays(published, dagbag, workspace):
    store = workspace / "model_store"
    before = (store / "basket.mar").read_bytes(), (store / "production.json").read_bytes()
    snapshot = open_store(default_store_url(store)).info()
    bad = workspace / "bad_data"
    shutil.copytree(workspace / "data", bad)
    orders = pd.read_csv(bad / "orders.csv")
    orders.loc[4, "order_hour_of_day"] = 31
    orders.to_csv(bad / "orders.csv", index=False)

    run = dagbag.dags["basket_retrain"].test(run_conf=conf(workspace, data_dir=str(bad)))
    got = states(run)
    assert str(run.state) == "failed"
    assert got[("validate", -1)] == "failed"
    assert all(
        got[(task, -1)] == "upstream_failed"
        for task in ("prepare", "package", "publish", "load_store")
    )
    assert ((store / "basket.mar").read_bytes(), (store / "production.json").read_bytes()) == before
    assert open_store(default_store_url(store)).info() == snapshot


@pytest.mark.slow
def test_a_worse_candidate_is_not_promoted(published, dagbag, workspace):
    store = workspace / "model_store"
    before = (store / "basket.mar").read_bytes()
    run = dagbag.dags["basket_retrain"].test(
        run_conf=conf(workspace, config=str(workspace / "worse.json"))
    )
    got = states(run)
    assert got[("compare", -1)] == "success" and got[("publish", -1)] == "skipped", got
    decisions = [json.loads(p.read_text()) for p in (workspace / "runs").glob("*/publish.json")]
    refused = [d for d in decisions if not d["promoted"]]
    assert len(refused) == 1 and refused[0]["score"] < refused[0]["production_score"]
    assert (store / "basket.mar").read_bytes() == before


@pytest.mark.slow
def test_a_promoted_model_is_registered_with_a_running_torchserve(dagbag, workspace, monkeypatch):
    """The whole path, token authorization on: a better model published by the DAG is served
    by TorchServe next; the management key comes from the Variable basket_management_token."""
    from basket.serving.torchserve import http
    from basket.testing.torchserve_server import LocalTorchServe

    store = workspace / "served_store"
    dag = dagbag.dags["basket_retrain"]
    first = dag.test(
        run_conf=conf(workspace, model_store=str(store), config=str(workspace / "worse.json"))
    )
    assert states(first)[("publish", -1)] == "success"  # nothing in production yet
    assert states(first)[("register", -1)] == "skipped"  # no management_url
    old = json.loads((store / "production.json").read_text())["version"]
    request = json.dumps([["Organic Strawberries"], ["Banana"]]).encode()
    with LocalTorchServe(model_store=store, token_auth=True) as server:
        predict = f"{server.inference_url}/predictions/basket"
        assert http("POST", predict, request)[0] == 400  # no key: refused
        answer = http("POST", predict, request, token=server.key("inference"))[1]
        assert answer["model_version"] == old
        monkeypatch.setenv("AIRFLOW_VAR_BASKET_MANAGEMENT_TOKEN", server.key("management"))
        better = dag.test(
            run_conf=conf(workspace, model_store=str(store), management_url=server.management_url)
        )
        assert states(better)[("register", -1)] == "success", states(better)
        new = json.loads((store / "production.json").read_text())["version"]
        reports = sorted(
            (workspace / "runs").glob("*/report.json"), key=lambda p: p.stat().st_mtime
        )
        winner = json.loads(reports[-1].read_text())["winner"]  # the rule may pick a simpler one
        assert new != old and new.startswith(winner) and not new.startswith("cnngru")
        answer = http("POST", predict, request, token=server.key("inference"))[1]
        assert answer["model_version"] == new
        listed = http(
            "GET", f"{server.management_url}/models/basket/all", token=server.key("management")
        )[1]
        assert [m["modelVersion"] for m in listed] == [new]
