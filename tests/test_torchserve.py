"""End to end: `basket package` -> a real TorchServe -> answers, 4xx errors, parity with batch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import yaml

from basket.commands.cli import main
from basket.config.serving import ServingConfig
from basket.data import build_histories, load_tables
from basket.data.synth import SynthConfig, write_synthetic
from basket.models.registry import load_model
from basket.serving.batch import score_users
from basket.serving.package import package_mar
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.fill import load_snapshot
from basket.serving.torchserve import http, register_model
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request
from basket.testing.torchserve_server import LocalTorchServe

pytestmark = pytest.mark.slow

ISSUE_REQUEST = [
    ["Organic Strawberries"],
    ["Organic Baby Spinach", "Organic Hass Avocado", "Organic Strawberries"],
    ["Organic Whole Milk"],
]


@pytest.fixture(scope="module")
def mar(xgb_run_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("model_store")
    assert main(["package", str(xgb_run_dir), "--out", str(store / "basket.mar")]) == 0
    return store / "basket.mar"


@pytest.fixture(scope="module")
def server(mar):
    with LocalTorchServe(model_store=mar.parent, models="basket=basket.mar") as running:
        yield running


def predict(server, body: bytes | str):
    if isinstance(body, str):
        body = body.encode()
    return http("POST", f"{server.inference_url}/predictions/basket", body)


def test_archive_holds_the_model_dir_handler_and_batching_config(mar, xgb_run_dir):
    with zipfile.ZipFile(mar) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        model_yaml = yaml.safe_load(archive.read("model-config.yaml"))
    assert {p.name for p in (xgb_run_dir / "winner").iterdir()} <= names
    assert "basket_handler.py" in names
    assert manifest["model"]["modelName"] == "basket"
    assert manifest["model"]["modelVersion"] == "xgboost-test-1"
    assert model_yaml["batchSize"] > 1 and model_yaml["maxBatchDelay"] <= 10
    assert model_yaml["basket"]["max_k"] == 100


def test_a_model_with_folders_is_archived_as_it_is(small_vocabulary_models, tmp_path):
    """The blend keeps its ranker in ranker/ and TIFU-KNN in neighbours/ (a stacked XGBoost
    its neighbours/ too): the archiver copies a folder's contents into the archive's root,
    where ranker/model.json overwrote the blend's own, and TorchServe served the ranker."""
    model_dir = small_vocabulary_models["blend"]
    mar = package_mar(model_dir, tmp_path / "blend.mar")
    with zipfile.ZipFile(mar) as archive:
        names = set(archive.namelist())
        root = json.loads(archive.read("model.json"))
        archive.extractall(tmp_path / "unpacked")
    inside = {str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()}
    assert inside <= names and "ranker/model.json" in names and "neighbours/database.npz" in names
    assert root["kind"] == "blend"
    assert type(load_model(tmp_path / "unpacked")).__name__ == "BlendRecommender"


def test_package_without_a_winner_says_so(tmp_path, capsys):
    assert main(["package", str(tmp_path), "--out", str(tmp_path / "x.mar")]) == 2
    assert "run `basket retrain` first" in capsys.readouterr().err
    assert not (tmp_path / "x.mar").exists()


def test_the_readme_request_gets_a_ranking_and_a_basket(server, mar):
    status, answer = predict(server, json.dumps(ISSUE_REQUEST))
    assert status == 200, answer
    assert set(answer) >= {
        "products",
        "product_ids",
        "scores",
        "basket",
        "unknown",
        "model_version",
    }
    assert len(answer["products"]) == 10 and answer["unknown"] == []
    assert answer["scores"] == sorted(answer["scores"], reverse=True)
    assert answer["model_version"] == "xgboost-test-1"
    # The customer's own staples come back first.
    assert "Organic Strawberries" in answer["products"][:5]
    # The predicted basket: real products, named and numbered alike, the staple among them.
    # (Before, this line asserted `basket <= products | basket`, which always holds.)
    assert len(answer["basket"]) == len(answer["basket_product_ids"]) > 0
    assert "Organic Strawberries" in answer["basket"]


BAD = [
    ("[[not json", 400, "not valid JSON"),
    ('{"orders": "milk"}', 400, "'orders' must be a list"),
    ('[["Organic Strawberries", 3.5]]', 400, "orders[0][1] is float"),
    ('[[{"a": 1}]]', 400, "orders[0][0] is dict"),
    ('{"orders": [], "k": -2}', 400, "k must be an integer"),
    ('{"orders": [], "k": 100000}', 400, "k must be an integer"),
    (json.dumps([["Organic Strawberries"]] * 1001), 413, "1001 orders"),
    (json.dumps([["Organic Strawberries"] * 1000]), 413, "1000 products"),
    ("[" + " " * 3_000_000 + "]", 413, "max_body_bytes"),
]


def test_every_bad_input_gets_a_4xx_and_the_server_keeps_answering(server, tmp_path):
    for body, status, message in BAD:
        got, answer = predict(server, body)
        assert got == status, (body[:40], answer)
        assert isinstance(answer, dict) and message in answer["message"], answer
        ok, good = predict(server, json.dumps(ISSUE_REQUEST))
        assert ok == 200 and good["products"], good
    # Beyond config.properties' max_request_size TorchServe itself answers 413 (empty body).
    big = tmp_path / "big.json"
    big.write_text("[" + " " * 9_000_000 + "]")
    curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"]
    curl += ["-H", "Content-Type: application/json", "--data-binary", f"@{big}"]
    out = subprocess.run([*curl, f"{server.inference_url}/predictions/basket"], capture_output=True)
    assert out.stdout == b"413"
    assert predict(server, json.dumps(ISSUE_REQUEST))[0] == 200


def test_answers_equal_batch_scoring_rows(server, xgb_run_dir, synth_dir, tmp_path):
    frame = pd.read_parquet(
        score_users(xgb_run_dir / "winner", synth_dir, tmp_path / "r.parquet").out_path
    )
    histories = build_histories(load_tables(synth_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, 24).astype(int)
    # Sent concurrently, so TorchServe batches some of them together.
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda u: predict(server, json.dumps(history_request(histories, u))), users)
        )
    # The handler got some of them together and scored each batch in one call.
    sizes = re.findall(r"scored a batch of (\d+) requests", server.log_tail(10_000))
    assert max(map(int, sizes)) > 1, sizes
    for user, (status, answer) in zip(users, answers, strict=True):
        row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
        assert status == 200, answer
        assert answer["product_ids"] == row["product_id"].tolist()
        assert answer["products"] == row["product_name"].tolist()
        np.testing.assert_allclose(answer["scores"], row["score"].to_numpy(), atol=1e-6)


def test_metrics_endpoint_counts_requests(server):
    predict(server, json.dumps(ISSUE_REQUEST))
    status, text = http("GET", f"{server.metrics_url}/metrics")
    assert status == 200 and "ts_inference_requests_total" in text


def test_registering_a_new_version_makes_it_the_default(server, xgb_run_dir, tmp_path):
    """What the nightly DAG's publish does when TorchServe runs (kept last: it swaps the model)."""
    winner = tmp_path / "run" / "winner"
    shutil.copytree(xgb_run_dir / "winner", winner)
    meta = json.loads((winner / "model.json").read_text())
    (winner / "model.json").write_text(json.dumps({**meta, "version": "xgboost-test-2"}))
    package_mar(winner, server.model_store / "basket-xgboost-test-2.mar")

    result = register_model(server.management_url, "basket-xgboost-test-2.mar", "xgboost-test-2")
    assert result == {"registered": "xgboost-test-2", "unloaded": ["xgboost-test-1"]}
    status, answer = predict(server, json.dumps(ISSUE_REQUEST))
    assert status == 200 and answer["model_version"] == "xgboost-test-2"


def test_a_torch_winner_serves_through_the_same_handler(neural_model_dir, tmp_path):
    package_mar(neural_model_dir, tmp_path / "store" / "basket.mar")
    with LocalTorchServe(model_store=tmp_path / "store") as neural:
        status, answer = predict(neural, json.dumps({"orders": ISSUE_REQUEST, "k": 5}))
        bad, error = predict(neural, '{"orders": [[1]], "k": 0}')
    assert status == 200 and answer["model_version"] == "attentiongru-test-1"
    assert len(answer["products"]) == 5 and answer["unknown"] == []
    assert bad == 400 and "k must be" in error["message"]


def test_online_equals_batch_through_torchserve_for_real_customers_and_a_small_vocabulary(
    journey_models, journey_dir, store_url, tmp_path
):
    """Real baskets (Complete Journey households) and every model kind, each knowing 300
    products of a catalogue of about 92,000, served by one real TorchServe with a history
    store (SQLite, then Redis): a full-history request and `{"user_id": u}` alone each equal
    the customer's `basket score` row."""
    store = tmp_path / "store"
    store.mkdir()
    for kind, model_dir in journey_models.items():
        package_mar(model_dir, store / f"{kind}.mar", ServingConfig(model_name=kind))
    snapshot = load_snapshot(journey_dir, store_url).version
    histories = build_histories(load_tables(journey_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, 8).astype(int)
    models = ",".join(f"{kind}={kind}.mar" for kind in journey_models)
    env = {STORE_URL_ENV: store_url}
    with LocalTorchServe(model_store=store, models=models, env=env) as server:
        for kind, model_dir in journey_models.items():
            frame = pd.read_parquet(
                score_users(model_dir, journey_dir, tmp_path / f"{kind}.parquet").out_path
            )
            for user in users:
                row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
                full = {**history_request(histories, int(user)), "history": "request"}
                by_id = {"user_id": int(histories.user_ids[user])}
                for body, source in ((full, "request"), (by_id, "store")):
                    status, answer = http(
                        "POST", f"{server.inference_url}/predictions/{kind}",
                        json.dumps(body).encode(),
                    )  # fmt: skip
                    assert status == 200 and answer["history"] == source, (kind, answer)
                    assert answer["snapshot"] == (snapshot if source == "store" else None)
                    assert answer["product_ids"] == row["product_id"].tolist(), kind
                    np.testing.assert_allclose(answer["scores"], row["score"], atol=1e-6)


def test_requests_by_id_through_torchserve_while_the_store_is_missing_then_reloaded(
    mar, xgb_run_dir, synth_dir, tmp_path
):
    """A store file that is not there yet: 503 naming it, the worker stays up and answers
    full histories. Then loads of two data sets alternate while requests by id keep coming:
    every answer is the batch row of the data set of the snapshot it names."""
    other = write_synthetic(SynthConfig(users=300, seed=8), tmp_path / "other")
    expected = {}
    for data in (synth_dir, other):
        frame = pd.read_parquet(
            score_users(xgb_run_dir / "winner", data, tmp_path / f"{data.name}.parquet").out_path
        )
        expected[data] = {u: g.sort_values("rank")["product_id"].tolist()
                          for u, g in frame.groupby("user_id")}  # fmt: skip
    url = f"sqlite:///{tmp_path / 'later' / 'histories.sqlite'}"
    users = sorted(set(expected[synth_dir]) & set(expected[other]))[::25]
    with LocalTorchServe(model_store=mar.parent, env={STORE_URL_ENV: url}) as server:
        status, error = predict(server, json.dumps({"user_id": users[0]}))
        assert status == 503 and error["type"] == "ServiceUnavailable", error
        assert "histories.sqlite" in error["message"] and "no such file" in error["message"]
        assert predict(server, json.dumps(ISSUE_REQUEST))[0] == 200

        data_of = {load_snapshot(synth_dir, url).version: synth_dir}
        answers, stop = [], threading.Event()

        def ask():
            while not stop.is_set():
                for user in users:
                    answers.append((user, predict(server, json.dumps({"user_id": user}))))

        with ThreadPoolExecutor(2) as pool:
            asking = [pool.submit(ask) for _ in range(2)]
            for data in (other, synth_dir, other):
                time.sleep(0.5)
                data_of[load_snapshot(data, url).version] = data
            time.sleep(0.5)
            stop.set()
            for job in asking:
                job.result()
    seen = set()
    for user, (status, answer) in answers:
        assert status == 200, answer
        seen.add(answer["snapshot"])
        assert answer["product_ids"] == expected[data_of[answer["snapshot"]]][user]
    assert len(answers) > 50 and len(seen) >= 3, (len(answers), seen)
