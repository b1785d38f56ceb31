"""Online answers by customer id, in process, on both history stores: `{"user_id": u}` equals
`basket score`'s row for u; request orders follow the stored ones; every bad case's answer."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from basket.data import build_histories, load_tables
from basket.serving.batch import score_users
from basket.serving.online import OnlineScorer
from basket.serving.store.base import StoreUnavailable
from basket.serving.store.connect import open_store
from basket.serving.store.fill import load_snapshot
from basket.testing.histories import scoring_users
from basket.testing.local_server import free_port
from basket.testing.requests import history_request


@pytest.mark.parametrize("kind", ["p_topfreq", "tifu_knn", "xgboost", "cnngru"])
@pytest.mark.parametrize("models, data", [("small_vocabulary_models", "synth_dir"),
                                          ("journey_models", "journey_dir")])  # fmt: skip
def test_an_id_alone_gets_the_batch_row_of_that_customer(
    kind, models, data, store_url, request, tmp_path
):
    model_dir, data_dir = request.getfixturevalue(models)[kind], request.getfixturevalue(data)
    info = load_snapshot(data_dir, store_url)
    scorer = OnlineScorer.from_model_dir(model_dir, store=open_store(store_url))
    frame = pd.read_parquet(score_users(model_dir, data_dir, tmp_path / "recs.parquet").out_path)
    histories = build_histories(load_tables(data_dir))
    user_ids = histories.user_ids[scoring_users(histories)]
    users = user_ids[np.linspace(0, len(user_ids) - 1, 12).astype(int)]
    answers = scorer.answer_batch([{"user_id": int(u)} for u in users])
    for user, (status, answer) in zip(users, answers, strict=True):
        row = frame[frame["user_id"] == user].sort_values("rank")
        assert status == 200, answer
        assert (answer["history"], answer["snapshot"]) == ("store", info.version)
        assert answer["product_ids"] == row["product_id"].tolist()
        np.testing.assert_allclose(answer["scores"], row["score"].to_numpy(), atol=1e-6)


@pytest.fixture
def stored(xgb_run_dir, synth_dir, tmp_path):
    """(scorer with a SQLite store of the synthetic customers, scorer without a store,
    the customers' histories, the snapshot)."""
    url = f"sqlite:///{tmp_path / 'histories.sqlite'}"
    info = load_snapshot(synth_dir, url)
    model_dir = xgb_run_dir / "winner"
    histories = build_histories(load_tables(synth_dir))
    return (
        OnlineScorer.from_model_dir(model_dir, store=open_store(url)),
        OnlineScorer.from_model_dir(model_dir),
        histories,
        info.version,
    )


def test_request_orders_follow_the_stored_ones(stored):
    with_store, without, histories, snapshot = stored
    full = history_request(histories, 4)
    new_order = {"products": [1, 2, 3], "order_dow": 1, "order_hour_of_day": 8,
                 "days_since_prior_order": 6}  # fmt: skip
    next_order = {"order_dow": 3, "order_hour_of_day": 10, "days_since_prior_order": 2}
    [(status, answer)] = with_store.answer_batch(
        [{"user_id": full["user_id"], "orders": [new_order], "next_order": next_order}]
    )
    expected = without.answer_batch(
        [{**full, "orders": [*full["orders"], new_order], "next_order": next_order}]
    )[0][1]
    assert status == 200 and (answer["history"], answer["snapshot"]) == ("store+request", snapshot)
    assert answer["product_ids"] == expected["product_ids"]
    assert answer["scores"] == pytest.approx(expected["scores"], abs=1e-6)
    # A gap not given after stored orders is a gap (7 days), not a first order.
    gapless = {k: v for k, v in new_order.items() if k != "days_since_prior_order"}
    [(_, answer)] = with_store.answer_batch([{"user_id": full["user_id"], "orders": [gapless]}])
    seven = {**new_order, "days_since_prior_order": 7}
    [(_, expected)] = without.answer_batch([{**full, "orders": [*full["orders"], seven],
                                             "next_order": {}}])  # fmt: skip
    assert answer["scores"] == pytest.approx(expected["scores"], abs=1e-6)


def test_an_unknown_customer_gets_the_popular_products_or_their_request_orders(stored):
    with_store, without, _, snapshot = stored
    (status, alone), (_, with_orders) = with_store.answer_batch(
        [{"user_id": 987654}, {"user_id": 987654, "orders": [[1, 2], [2, 3]]}]
    )
    assert status == 200 and alone["fallback"] == "unknown customer"
    assert (alone["history"], alone["snapshot"]) == ("request", snapshot)
    assert alone["product_ids"] == with_store.model.vocab.product_ids[:10].tolist()
    expected = without.answer_batch([{"user_id": 987654, "orders": [[1, 2], [2, 3]]}])[0][1]
    assert with_orders["history"] == "request" and with_orders["fallback"] is None
    assert with_orders["product_ids"] == expected["product_ids"]


def test_history_request_scores_the_request_alone(stored):
    with_store, without, histories, _ = stored
    body = {**history_request(histories, 2), "history": "request"}
    [(status, answer)] = with_store.answer_batch([body])
    assert status == 200 and (answer["history"], answer["snapshot"]) == ("request", None)
    assert answer["product_ids"] == without.answer_batch([body])[0][1]["product_ids"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"user_id": "42"}, "user_id must be a positive 32-bit integer"),
        ({"user_id": -3}, "user_id must be a positive 32-bit integer"),
        ({"user_id": 2**31}, "user_id must be a positive 32-bit integer"),
        ({"user_id": True}, "user_id must be a positive 32-bit integer"),
        ({"user_id": 1, "history": "store"}, "history must be one of auto, request"),
        ({"k": 3}, "needs 'orders' or 'user_id'"),
    ],
)
def test_a_malformed_id_gets_a_400(stored, body, message):
    [(status, answer)] = stored[0].answer_batch([body])
    assert status == 400 and message in answer["message"], answer


def test_an_id_alone_without_a_store_says_how_to_configure_one(stored):
    [(status, answer)] = stored[1].answer_batch([{"user_id": 5}])
    assert status == 400 and "BASKET_STORE_URL" in answer["message"]


def test_a_store_that_is_down_gets_a_503_and_answers_resume_when_it_returns(stored, synth_dir):
    """A private redis-server, stopped and started again: id requests get 503 naming the
    store meanwhile (full-history requests in the same batch are answered), then 200."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (Debian's redis-server package)"
    port = free_port()
    url = f"redis://:s3cret@127.0.0.1:{port}/0"

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--requirepass", "s3cret"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                open_store(url).info()
                return process
            except StoreUnavailable:  # not up yet
                time.sleep(0.1)
        raise TimeoutError("redis-server did not start")

    _, without, histories, _ = stored
    process = start()
    try:
        load_snapshot(synth_dir, url)
        scorer = OnlineScorer(without.model, without.version, store=open_store(url))
        full = {**history_request(histories, 1), "history": "request"}
        assert scorer.answer_batch([{"user_id": 1}])[0][0] == 200
        process.terminate()
        process.wait(timeout=10)
        started = time.perf_counter()
        (down, error), (ok, _) = scorer.answer_batch([{"user_id": 1}, full])
        assert down == 503 and error["type"] == "ServiceUnavailable", error
        assert f"127.0.0.1:{port}" in error["message"] and "s3cret" not in error["message"]
        assert ok == 200 and time.perf_counter() - started < 5
        process = start()
        load_snapshot(synth_dir, url)  # this Redis keeps nothing on disk
        status, answer = scorer.answer_batch([{"user_id": 1}])[0]
        assert status == 200 and answer["history"] == "store"
    finally:
        process.kill()
        process.wait()
