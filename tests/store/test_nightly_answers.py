"""Nightly answers kept beside each history: a request by id is answered from the store while
nothing changed, exactly as the model would answer live, and goes live the moment something
did (an appended order, another model, a larger k, a next order's context, a new snapshot)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from basket.data import build_histories, load_tables
from basket.serving.batch import score_users
from basket.serving.online import OnlineScorer
from basket.serving.store.connect import open_store
from basket.serving.store.fill import append_orders, load_snapshot
from basket.serving.store.nightly import decode_answer

CUSTOMERS = 100


def ask(scorer: OnlineScorer, bodies: list[dict]) -> list[dict]:
    answers = scorer.answer_batch([json.dumps(body) for body in bodies])
    assert all(status == 200 for status, _ in answers), answers
    return [answer for _, answer in answers]


def same_answer(live: dict, nightly: dict) -> None:
    """Equal in every field but `computed`; scores to float32 precision."""
    assert live["computed"] == "live" and nightly["computed"] == "nightly"
    for key in live.keys() - {"computed", "scores"}:
        assert live[key] == nightly[key], key
    assert nightly["scores"] == pytest.approx(live["scores"], rel=1e-6, abs=1e-7)


def households(data_dir) -> list[int]:
    return build_histories(load_tables(data_dir)).user_ids[:CUSTOMERS].tolist()


def test_a_nightly_answer_equals_the_live_one_for_every_kind(
    journey_dir, journey_models, store_url, tmp_path
):
    load_snapshot(journey_dir, store_url)
    users = households(journey_dir)
    bodies = [{"user_id": user, "k": k} for k in (10, 3) for user in users]
    for kind, model_dir in journey_models.items():
        scorer = OnlineScorer.from_model_dir(model_dir, store=open_store(store_url))
        live = ask(scorer, bodies)
        result = score_users(model_dir, journey_dir, tmp_path / f"{kind}.parquet",
                             store_url=store_url)  # fmt: skip
        assert result.answers_stored == result.users >= CUSTOMERS
        nightly = ask(scorer, bodies)
        for before, after in zip(live, nightly, strict=True):
            same_answer(before, after)
        frame = pd.read_parquet(tmp_path / f"{kind}.parquet")
        row = frame[frame["user_id"] == users[0]].sort_values("rank")
        assert row["product_id"].tolist() == nightly[0]["product_ids"], kind


def test_something_new_goes_live(journey_dir, journey_models, store_url, tmp_path):
    """An appended order, a larger k than was stored, a next order's context, the request's
    own orders, a model that did not compute the answers, a new snapshot: each goes live."""
    load_snapshot(journey_dir, store_url)
    users = households(journey_dir)[:5]
    xgboost, tifu = journey_models["xgboost"], journey_models["tifu_knn"]
    score_users(xgboost, journey_dir, tmp_path / "x.parquet", store_url=store_url, answers_k=20)
    scorer = OnlineScorer.from_model_dir(xgboost, store=open_store(store_url))
    computed = lambda body: ask(scorer, [body])[0]["computed"]  # noqa: E731
    assert computed({"user_id": users[0], "k": 20}) == "nightly"
    assert computed({"user_id": users[0], "k": 21}) == "live"
    assert computed({"user_id": users[0], "next_order": {"order_dow": 3}}) == "live"
    assert computed({"user_id": users[0], "orders": [[1]]}) == "live"
    assert computed({"user_id": users[0], "orders": [[1]], "history": "request"}) == "live"

    other = OnlineScorer.from_model_dir(tifu, store=open_store(store_url))
    answer = ask(other, [{"user_id": users[1]}])[0]
    assert answer["computed"] == "live" and answer["model_version"] == "tifu_knn-small"

    append = tmp_path / "since"
    append.mkdir()
    pd.DataFrame([{"order_id": 990001, "user_id": users[2], "eval_set": "prior",
                   "order_number": 999, "order_dow": 1, "order_hour_of_day": 8,
                   "days_since_prior_order": 2.0}]).to_csv(append / "orders.csv", index=False)  # fmt: skip
    pd.DataFrame([{"order_id": 990001, "product_id": 1, "add_to_cart_order": 1,
                   "reordered": 0}]).to_csv(append / "order_products__prior.csv", index=False)  # fmt: skip
    append_orders(append, store_url)
    assert computed({"user_id": users[2]}) == "live"
    assert computed({"user_id": users[3]}) == "nightly"

    load_snapshot(journey_dir, store_url)  # a new snapshot starts without answers
    assert computed({"user_id": users[3]}) == "live"


def test_answers_stored_for_a_snapshot_that_was_replaced_are_refused(journey_dir, store_url):
    first = load_snapshot(journey_dir, store_url).version
    load_snapshot(journey_dir, store_url)
    store = open_store(store_url, writable=True)
    assert store.write_answers(first, [1], [b"x" * 28]) is False
    assert store.read([1]).answers == {}


def test_an_unreadable_stored_answer_is_ignored():
    assert decode_answer(b"") is None
    assert decode_answer(np.zeros(9, "<i4").tobytes()) is None


def test_scoring_goes_on_when_the_store_cannot_take_answers(journey_dir, journey_models, tmp_path):
    missing = f"sqlite:///{tmp_path / 'never-loaded.sqlite'}"
    result = score_users(journey_models["p_topfreq"], journey_dir, tmp_path / "p.parquet",
                         store_url=missing)  # fmt: skip
    assert result.answers_stored == 0 and result.users > 0


def test_answers_of_many_customers_at_once_are_stored(journey_dir, store_url):
    """A scored chunk holds thousands of customers: more than one Lua call takes at once
    (Redis's `unpack` stops near 8,000 values), so the store writes them in parts."""
    version = load_snapshot(journey_dir, store_url).version
    store = open_store(store_url, writable=True)
    known = households(journey_dir)
    users = sorted(set(range(1, 6001)) | set(known))
    assert store.write_answers(version, users, [b"a" * 28] * len(users)) is True
    answers = store.read(known).answers
    assert set(answers) == set(known) and set(answers.values()) == {b"a" * 28}
