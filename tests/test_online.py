"""Online answers in-process: request parsing, bad input, the popular fallback, batch parity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from basket.config.serving import RequestLimits
from basket.data import build_histories, load_tables
from basket.serving.batch import score_users
from basket.serving.online import OnlineScorer
from basket.serving.requests import parse_request
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request


@pytest.fixture(scope="module")
def scorer(xgb_run_dir) -> OnlineScorer:
    return OnlineScorer.from_model_dir(xgb_run_dir / "winner")


def _one(scorer, body) -> tuple[int, dict]:
    return scorer.answer_batch([body])[0]


def test_names_match_case_insensitively_and_ids_work_too(scorer):
    vocab = scorer.model.vocab
    names, ids = vocab.product_names[:3].astype(str), vocab.product_ids[:3]
    by_name = [[names[0].upper(), f"  {names[1].lower()} "], [names[2]]]
    by_id = [[int(ids[0]), str(ids[1])], [int(ids[2])]]
    status_name, answer_name = _one(scorer, by_name)
    status_id, answer_id = _one(scorer, by_id)
    assert status_name == status_id == 200
    assert answer_name == answer_id
    assert answer_name["unknown"] == [] and len(answer_name["products"]) == 10
    assert answer_name["model_version"] == "xgboost-test-1"
    assert set(answer_name["basket"]) <= set(vocab.product_names.astype(str))


def test_unknown_products_are_listed_and_count_as_lines_of_their_order(scorer):
    """As in batch data, a product the model does not know is still a line of its order (it
    changes basket sizes and counts); any unknown item counts like any other."""
    name = str(scorer.model.vocab.product_names[0])
    status, answer = _one(scorer, [[name, "Unicorn Milk", 999_999_999]])
    assert status == 200
    assert answer["unknown"] == ["Unicorn Milk", 999_999_999]
    other = _one(scorer, [[name, "Dragon Fruit Soda", 999_999_998]])[1]
    assert answer == {**other, "unknown": answer["unknown"]}


def test_a_history_of_unknown_products_is_scored_like_batch_scores_it(scorer):
    status, answer = _one(scorer, [["Unicorn Milk"], [999_999_999]])
    assert status == 200 and answer["fallback"] is None
    assert answer["unknown"] == ["Unicorn Milk", 999_999_999]


def test_empty_history_gets_the_most_bought_products(scorer):
    vocab = scorer.model.vocab
    for body in ([], {"orders": [], "k": 3}, [[]]):
        status, answer = _one(scorer, body)
        assert status == 200 and answer["fallback"] == "popular"
        assert answer["product_ids"] == vocab.product_ids[: len(answer["product_ids"])].tolist()
    assert len(_one(scorer, {"orders": [], "k": 3})[1]["products"]) == 3


def test_a_smaller_k_is_a_prefix_of_a_larger_one(scorer):
    orders = [[int(i) for i in scorer.model.vocab.product_ids[[0, 5, 9]]]]
    _, small = _one(scorer, {"orders": orders, "k": 3})
    _, large = _one(scorer, {"orders": orders, "k": 20})
    assert small["product_ids"] == large["product_ids"][:3]
    assert small["scores"] == large["scores"][:3]


BAD_REQUESTS = [
    (b"[[not json", 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    ('"milk"', 400, "expected a list of orders"),
    (["Banana"], 400, "orders[0] is str"),
    ([["Banana", 3.5]], 400, "orders[0][1] is float"),
    ([[None]], 400, "orders[0][0] is NoneType"),
    ([[["nested"]]], 400, "orders[0][0] is list"),
    ([[True]], 400, "orders[0][0] is bool"),
    ([[-4]], 400, "positive 32-bit"),
    ([[7, 2**31]], 400, "orders[0][1] is id 2147483648"),
    ([["Banana", 0]], 400, "orders[0][1] is id 0"),
    ([["Banana", "x" * 500]], 413, "orders[0][1] is a name of 500 characters"),
    ({"orders": [], "k": -1}, 400, "k must be an integer from 1 to 100"),
    ({"orders": [], "k": 10**9}, 400, "k must be an integer"),
    ({"orders": [], "k": "10"}, 400, "k must be an integer"),
    ({"order": []}, 400, "needs 'orders'"),
    ({"orders": [], "next_order": {"order_dow": 9}}, 400, "next_order.order_dow"),
    ({"orders": [{"items": []}]}, 400, "must have 'products'"),
    # An order's context: the message names the order, the key and the value.
    ({"orders": [[1], {"products": [1], "order_dow": 7}]}, 400, "orders[1].order_dow must be"),
    ({"orders": [{"products": [1], "order_hour_of_day": True}]}, 400, "got True"),
    ({"orders": [{"products": [], "days_since_prior_order": "7"}]}, 400, "got '7'"),
    ({"orders": [{"products": [1], "days_since_prior_order": 10**400}]}, 400, "to 365"),
    (b'{"orders": [{"products": [1], "days_since_prior_order": NaN}]}', 400, "got nan"),
    ({"orders": [{"products": [1], "order_dow": -1}]}, 400, "orders[0].order_dow"),
    ([["Banana"]] * 1001, 413, "1001 orders; the limit is 1000"),
    ([["Banana"] * 201], 413, "201 products; the limit is 200"),
    ([["x" * 500]], 413, "500 characters"),
    (json.dumps([["Banana"] * 150] * 80).encode() + b" " * 1_200_000, 413, "max_body_bytes"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(scorer, body, status, message):
    got, answer = _one(scorer, body)
    assert got == status
    assert answer["code"] == status and message in answer["message"], answer


def test_each_orders_context_stays_with_its_order_when_empty_orders_are_skipped(scorer):
    """Day, hour and gap of every kept order, in order; a gap not given is NaN before the
    first kept order and the default gap before the others; day and hour unknown are -1."""
    first = int(scorer.model.vocab.product_ids[0])
    body = {"orders": [
        {"products": [], "order_dow": 1, "order_hour_of_day": 2, "days_since_prior_order": 3},
        {"products": [first], "order_dow": 4, "order_hour_of_day": 5},
        [first, first],
        {"products": [first], "order_hour_of_day": 23, "days_since_prior_order": 0.5},
    ]}  # fmt: skip
    history = parse_request(body, scorer.lookup, scorer.limits).history
    assert history.order_lengths.tolist() == [1, 2, 1]
    assert history.order_dow.tolist() == [4, -1, -1]
    assert history.order_hour.tolist() == [5, -1, 23]
    np.testing.assert_array_equal(history.days_since_prior, [np.nan, 7.0, 0.5])


def test_one_bad_request_does_not_spoil_its_batch(scorer):
    good = [[str(scorer.model.vocab.product_names[0])]]
    answers = scorer.answer_batch([good, b"{oops", good])
    assert [status for status, _ in answers] == [200, 400, 200]
    assert answers[0][1] == answers[2][1]


def test_limits_are_configurable(xgb_run_dir):
    strict = OnlineScorer.from_model_dir(
        xgb_run_dir / "winner", RequestLimits.from_mapping({"max_k": 5, "torch_threads": 1})
    )
    assert _one(strict, {"orders": [], "k": 6})[0] == 400
    assert _one(strict, {"orders": [], "k": 5})[0] == 200


@pytest.mark.parametrize("kind", ["xgboost", "neural"])
def test_online_answer_equals_the_batch_row_for_the_same_history(
    kind, xgb_run_dir, neural_model_dir, synth_dir, tmp_path
):
    model_dir = xgb_run_dir / "winner" if kind == "xgboost" else neural_model_dir
    # One thread, as a server worker loads it; batch scoring uses every core.
    scorer = OnlineScorer.from_model_dir(model_dir, threads=1)
    if kind == "xgboost":
        config = json.loads(scorer.model.booster.save_config())
        assert config["learner"]["generic_param"]["nthread"] == "1"
    frame = pd.read_parquet(score_users(model_dir, synth_dir, tmp_path / "recs.parquet").out_path)
    histories = build_histories(load_tables(synth_dir))
    histories = histories.select_users(scoring_users(histories))
    users = [0, 1, histories.n_users - 1]
    answers = scorer.answer_batch([history_request(histories, user) for user in users])
    for user, (status, answer) in zip(users, answers, strict=True):
        row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
        assert status == 200
        assert answer["product_ids"] == row["product_id"].tolist()
        assert answer["products"] == row["product_name"].tolist()
        np.testing.assert_allclose(answer["scores"], row["score"].to_numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["p_topfreq", "tifu_knn", "xgboost", "cnngru"])
@pytest.mark.parametrize(
    "models, data, outside_share",
    [
        ("small_vocabulary_models", "synth_dir", 0.3),  # 40 of hundreds of synthetic products
        ("journey_models", "journey_dir", 0.5),  # Complete Journey: 300 of about 92,000
    ],
)
def test_online_equals_batch_when_the_catalogue_is_larger_than_the_vocabulary(
    kind, models, data, outside_share, request, tmp_path
):
    """Before: products outside the vocabulary were dropped online (and orders left empty),
    while batch kept every line; TIFU-KNN took request positions for customer ids. Checked on
    synthetic customers and on real households, whose histories lie mostly outside it."""
    model_dir, data_dir = request.getfixturevalue(models)[kind], request.getfixturevalue(data)
    scorer = OnlineScorer.from_model_dir(model_dir)
    frame = pd.read_parquet(score_users(model_dir, data_dir, tmp_path / "recs.parquet").out_path)
    histories = build_histories(load_tables(data_dir))
    histories = histories.select_users(scoring_users(histories))
    assert (scorer.model.vocab.index_of(histories.product_ids) < 0).mean() > outside_share
    users = np.linspace(0, histories.n_users - 1, 20).astype(int)
    answers = scorer.answer_batch([history_request(histories, int(user)) for user in users])
    for user, (status, answer) in zip(users, answers, strict=True):
        row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
        assert status == 200 and answer["unknown"]
        assert answer["product_ids"] == row["product_id"].tolist()
        np.testing.assert_allclose(answer["scores"], row["score"].to_numpy(), atol=1e-6)
