"""Faults under traffic, short versions of `bench/bench_faults.py`'s: a real TorchServe keeps
its promises while a model worker is killed, its SQLite store is replaced, a new model is
registered, and its Redis store restarts. No answer is ever wrong (each 200 is the batch row
of the model version it names)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from basket.config.serving import ServingConfig
from basket.data import build_histories, load_tables
from basket.models.registry import load_model
from basket.models.top_freq import PTopFreq
from basket.serving.batch import score_users
from basket.serving.package import package_mar
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.fill import load_snapshot
from basket.testing.faults import (
    PrivateRedis,
    kill_a_worker,
    replace_the_snapshot,
    restart_the_store,
    swap_the_model,
)
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request
from basket.testing.torchserve_server import LocalTorchServe
from basket.testing.traffic import Request, Traffic

pytestmark = pytest.mark.slow
CUSTOMERS = 40
SWAP_VERSION = "p_topfreq-swap"


def batch_rows(model_dir, data_dir, out) -> tuple[str, dict]:
    """(model version, {user id: its batch ranking}) of `basket score`."""
    frame = pd.read_parquet(score_users(model_dir, data_dir, out).out_path)
    rows = {int(user): tuple(group.sort_values("rank")["product_id"])
            for user, group in frame.groupby("user_id")}  # fmt: skip
    return frame["model_version"].iloc[0], rows


@pytest.fixture(scope="module")
def served(xgb_run_dir, synth_dir, tmp_path_factory):
    """A model store with XGBoost as basket.mar and P-TopFreq beside it to swap in, both
    versions' batch rows, and requests (full histories and ids) for 40 customers."""
    store = tmp_path_factory.mktemp("fault_store")
    first = xgb_run_dir / "winner"
    second = PTopFreq(load_model(first).vocab).save(
        tmp_path_factory.mktemp("second") / "p_topfreq", extra={"version": SWAP_VERSION}
    )
    package_mar(first, store / "basket.mar", ServingConfig())
    package_mar(second, store / f"basket-{SWAP_VERSION}.mar", ServingConfig())
    expected = dict(batch_rows(m, synth_dir, store / f"{i}.parquet")
                    for i, m in enumerate((first, second)))  # fmt: skip
    histories = build_histories(load_tables(synth_dir))
    histories = histories.select_users(scoring_users(histories))
    requests = []
    for user in range(min(CUSTOMERS, histories.n_users)):
        user_id = int(histories.user_ids[user])
        full = {**history_request(histories, user), "history": "request"}
        requests += [Request("full", user_id, json.dumps(full).encode()),
                     Request("id", user_id, json.dumps({"user_id": user_id}).encode())]  # fmt: skip
    return store, expected, requests


@pytest.fixture(scope="module")
def server(served, synth_dir):
    store, _, _ = served
    url = f"sqlite:///{store / 'histories.sqlite'}"
    load_snapshot(synth_dir, url)
    with LocalTorchServe(model_store=store, env={STORE_URL_ENV: url}) as running:
        running.store_url = url
        yield running


def traffic(server, requests) -> Traffic:
    return Traffic(f"{server.inference_url}/predictions/basket", requests, workers=8)


def test_a_killed_worker_fails_only_its_requests_in_flight_and_comes_back(server, served):
    _, expected, requests = served
    result = kill_a_worker(server, traffic(server, requests), expected, seconds=7)
    assert result.wrong == 0
    assert result.failed <= 8, result  # the 8 traffic threads' requests in flight at most
    assert result.recovery_s is not None and result.recovery_s < 60, result
    assert result.sent > 50


def test_a_new_snapshot_loaded_while_serving_fails_nothing(server, served, synth_dir):
    _, expected, requests = served
    result = replace_the_snapshot(
        server.store_url, synth_dir, traffic(server, requests), expected, seconds=6
    )
    assert (result.failed, result.wrong) == (0, 0), result
    assert result.details["answers_from_new"] > 0


def test_a_model_registered_while_serving_switches_once_and_fails_nothing(server, served):
    _, expected, requests = served
    result = swap_the_model(
        server, traffic(server, requests), expected, f"basket-{SWAP_VERSION}.mar",
        SWAP_VERSION, seconds=8,
    )  # fmt: skip
    assert (result.failed, result.wrong) == (0, 0), result
    assert result.details["flips_back"] == 0, result
    assert SWAP_VERSION in result.details["versions"]


def test_a_restarted_redis_store_gives_503s_only_to_ids_and_answers_within_a_second(
    served, synth_dir
):
    store, expected, requests = served
    redis = PrivateRedis().start()
    try:
        load_snapshot(synth_dir, redis.url)
        with LocalTorchServe(model_store=store, env={STORE_URL_ENV: redis.url}) as running:
            result = restart_the_store(redis, synth_dir, traffic(running, requests), expected,
                                       at_s=2, outage_s=2, seconds=7)  # fmt: skip
    finally:
        redis.stop()
    details = result.details
    assert result.wrong == 0 and details["other_5xx"] == 0 and details["full_failed"] == 0
    assert details["id_503"] > 0, result  # the outage was seen
    assert result.recovery_s is not None and result.recovery_s <= 1.0, result
