"""Nightly answers through the real servers: for 100 Complete Journey households and every
model kind, TorchServe and Triton answer `{"user_id": u}` from the answer batch scoring
stored beside the history ("computed": "nightly"), equal to what the model answered live
before it was stored; one server on each history store backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from basket.config.serving import ServingConfig
from basket.data import build_histories, load_tables
from basket.serving.batch import score_users
from basket.serving.package import package_mar
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.fill import load_snapshot
from basket.serving.torchserve import http
from basket.serving.triton.repository import TritonConfig, export_triton_repository
from basket.testing.torchserve_server import LocalTorchServe
from basket.testing.triton_server import LocalTriton

pytestmark = pytest.mark.slow
CUSTOMERS = 100
COMPARED = ("product_ids", "basket_product_ids", "history", "snapshot", "fallback")


def nightly_equals_live(ask, journey_models, journey_dir, store_url, tmp_path) -> None:
    """For each kind in turn: ask every household by id (live), store that kind's answers,
    ask again (nightly), and compare."""
    users = build_histories(load_tables(journey_dir)).user_ids[:CUSTOMERS].tolist()
    bodies = [{"user_id": user} for user in users]
    for kind, model_dir in journey_models.items():
        live = ask(kind, bodies)
        stored = score_users(model_dir, journey_dir, tmp_path / f"{kind}.parquet",
                             store_url=store_url)  # fmt: skip
        assert stored.answers_stored >= CUSTOMERS
        nightly = ask(kind, bodies)
        assert {a["computed"] for a in live} == {"live"}, kind
        assert {a["computed"] for a in nightly} == {"nightly"}, kind
        for before, after in zip(live, nightly, strict=True):
            assert {key: before[key] for key in COMPARED} == {key: after[key] for key in COMPARED}
            np.testing.assert_allclose(after["scores"], before["scores"], rtol=1e-6, atol=1e-7)


def test_torchserve_answers_by_id_from_the_nightly_answers(
    journey_models, journey_dir, redis_url, tmp_path
):
    """TorchServe on the Redis store (Triton below on the SQLite one: each backend once)."""
    store_url = redis_url
    store = tmp_path / "model_store"
    store.mkdir()
    for kind, model_dir in journey_models.items():
        package_mar(model_dir, store / f"{kind}.mar", ServingConfig(model_name=kind))
    load_snapshot(journey_dir, store_url)
    models = ",".join(f"{kind}={kind}.mar" for kind in journey_models)
    with LocalTorchServe(
        model_store=store, models=models, env={STORE_URL_ENV: store_url}
    ) as server:

        def ask(kind: str, bodies: list[dict]) -> list[dict]:
            answers = []
            for body in bodies:
                status, answer = http("POST", f"{server.inference_url}/predictions/{kind}",
                                      json.dumps(body).encode())  # fmt: skip
                assert status == 200, answer
                answers.append(answer)
            return answers

        nightly_equals_live(ask, journey_models, journey_dir, store_url, tmp_path)


def test_triton_answers_by_id_from_the_nightly_answers(
    journey_models, journey_dir, triton_venv, tmp_path
):
    store_url = f"sqlite:///{tmp_path / 'histories.sqlite'}"
    repo = tmp_path / "repo"
    for kind, model_dir in journey_models.items():
        export_triton_repository(model_dir, repo, TritonConfig(name=kind))
    load_snapshot(journey_dir, store_url)
    with LocalTriton(repo, venv=triton_venv, env={STORE_URL_ENV: store_url}) as server:

        def ask(kind: str, bodies: list[dict]) -> list[dict]:
            answers = server.ask(bodies, kind)
            assert all("error" not in answer for answer in answers), answers
            return answers

        nightly_equals_live(ask, journey_models, journey_dir, store_url, tmp_path)
