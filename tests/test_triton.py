"""The Triton model repository, served by a real tritonserver (nvidia-pytriton's), in parity
with batch scoring, in the Triton environment (.venv-triton) that `make test` builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from basket.commands.cli import main
from basket.config.serving import RequestLimits
from basket.data import build_histories, load_tables
from basket.serving.batch import score_users
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.connect import open_store
from basket.serving.store.fill import load_snapshot
from basket.serving.triton.repository import TritonConfig, export_triton_repository
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request
from basket.testing.triton_server import LocalTriton

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(xgb_run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("triton")
    argv = [
        "package",
        str(xgb_run_dir),
        "--out",
        str(out / "basket.mar"),
        "--triton",
        str(out / "repo"),
        # Not the defaults: Triton must take the same settings as the .mar.
        "--server-batch-size", "4", "--workers", "1", "--max-k", "50", "--max-orders", "90",
    ]  # fmt: skip
    assert main(argv) == 0
    return out / "repo"


def test_repository_layout(exported, xgb_run_dir):
    config = (exported / "basket" / "config.pbtxt").read_text()
    assert 'backend: "python"' in config and "dynamic_batching" in config
    assert "max_batch_size: 4" in config and "count: 1" in config
    assert 'key: "max_k" value: { string_value: "50" }' in config
    assert 'key: "max_orders" value: { string_value: "90" }' in config
    # One torch thread per instance, as TorchServe's workers (two threads each on two cores
    # took Triton from 1,434 to 263 requests/s at concurrency 16).
    assert 'key: "torch_threads" value: { string_value: "1" }' in config
    assert "max_queue_delay_microseconds: 1000" in config  # ServingConfig's 1 ms
    assert (exported / "basket" / "1" / "model.py").is_file()
    assert (exported / "basket" / "1" / "basket" / "serving" / "online.py").is_file()
    shipped_code = {p.name for p in (exported / "basket" / "1" / "basket").iterdir()}
    # A server needs none of these: it never imports training (the layers contract).
    assert not {"testing", "commands", "resources", "training", "orchestration"} & shipped_code
    shipped = {p.name for p in (exported / "basket" / "1" / "model").iterdir()}
    assert shipped == {p.name for p in (xgb_run_dir / "winner").iterdir()}


@pytest.mark.parametrize("kind", ["xgboost", "neural"])
def test_triton_answers_equal_batch_scoring_and_survive_bad_input(
    kind, exported, triton_venv, xgb_run_dir, neural_model_dir, synth_dir, tmp_path
):
    model_dir = xgb_run_dir / "winner"
    if kind == "neural":  # a torch winner runs through the same Python-backend model
        model_dir = neural_model_dir
        config = TritonConfig(limits=RequestLimits(max_k=50))
        exported = export_triton_repository(model_dir, tmp_path / "repo", config).parent
    frame = pd.read_parquet(score_users(model_dir, synth_dir, tmp_path / "r.parquet").out_path)
    histories = build_histories(load_tables(synth_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, 10).astype(int)
    good = [history_request(histories, int(u)) for u in users]
    bad = {"orders": [[1, 2]], "k": 60}  # within the default 100, beyond the archive's 50
    with LocalTriton(exported, venv=triton_venv) as server:
        answers = server.ask([*good[:5], bad, *good[5:]])
        again = server.ask(good[:1])
    assert "K must be from 1 to 50" in answers[5]["error"]
    answers = answers[:5] + answers[6:]
    for user, answer in zip(users, answers, strict=True):
        row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
        assert answer["product_ids"] == row["product_id"].tolist()
        np.testing.assert_allclose(answer["scores"], row["score"].to_numpy(), atol=1e-6)
    assert again[0] == answers[0]


def test_triton_answers_ids_from_the_store_as_batch_scores_real_customers(
    journey_models, journey_dir, store_url, triton_venv, tmp_path
):
    """Every model kind over Complete Journey households, one Triton with a history store
    (SQLite, then Redis): `{"user_id": u}` alone and the full history both equal the
    customer's `basket score` row; a store that is gone answers 503, the server stays up."""
    repo = tmp_path / "repo"
    for kind, model_dir in journey_models.items():
        export_triton_repository(model_dir, repo, TritonConfig(name=kind))
    snapshot = load_snapshot(journey_dir, store_url).version
    histories = build_histories(load_tables(journey_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, 6).astype(int)
    by_id = [{"user_id": int(histories.user_ids[u])} for u in users]
    full = [{**history_request(histories, int(u)), "history": "request"} for u in users]
    with LocalTriton(repo, venv=triton_venv, env={STORE_URL_ENV: store_url}) as server:
        answers = {kind: server.ask(by_id, kind) for kind in journey_models}
        whole = {kind: server.ask(full, kind) for kind in journey_models}
        unknown = server.ask([{"user_id": 987654}], "tifu_knn")[0]
        forget_snapshot(store_url)
        gone = server.ask([by_id[0], full[0]], "xgboost")
    assert gone[0].get("status") == 503 and "holds no snapshot" in gone[0]["error"], gone
    assert gone[1]["history"] == "request"  # a request that needs no store is still answered
    for kind, model_dir in journey_models.items():
        frame = pd.read_parquet(
            score_users(model_dir, journey_dir, tmp_path / f"{kind}.parquet").out_path
        )
        for user, answer, given in zip(users, answers[kind], whole[kind], strict=True):
            row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
            assert (answer["history"], answer["snapshot"]) == ("store", snapshot), answer
            assert (given["history"], given["snapshot"]) == ("request", None), given
            for served in (answer, given):
                assert served["product_ids"] == row["product_id"].tolist(), kind
                np.testing.assert_allclose(served["scores"], row["score"].to_numpy(), atol=1e-6)
    assert unknown["fallback"] == "unknown customer" and unknown["history"] == "request"


def forget_snapshot(url: str) -> None:
    """Remove the pointer to the current snapshot, as if nothing had been loaded."""
    store = open_store(url, writable=True)
    if url.startswith("sqlite:///"):
        store._run(lambda db: db.execute("DELETE FROM current_snapshot"))
    else:
        store.client.delete(f"{store.prefix}:current")
