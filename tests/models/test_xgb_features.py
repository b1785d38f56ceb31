"""XGBoost's repeat-timing features against hand-computed cases, and the ablation setting."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from basket.data.vocab import VocabConfig, Vocabulary
from basket.models.xgb import XGBConfig, XGBoostRecommender
from basket.models.xgb_features import BASE_FEATURES, ProductTable, candidate_features
from basket.testing.histories import histories_from
from basket.training.tuning import refit_set, tuning_set

PRODUCTS = pd.DataFrame(
    {
        "product_id": [1, 2, 3],
        "product_name": ["a", "b", "c"],
        "aisle_id": [1, 1, 2],
        "department_id": [1, 1, 1],
    }
)


@pytest.fixture()
def table():
    # Customer 1: product 1 in orders 1 and 3 of 4 (7 days apart each); 2 only in order 4.
    # Customer 2: product 1 in all 3 orders, 3 in the first.
    history = histories_from([[[1], [3], [1], [2]], [[1, 3], [1], [1]]])
    vocab = Vocabulary.build(history.product_ids, PRODUCTS, VocabConfig())
    products = ProductTable.build(history, vocab, PRODUCTS, np.ones((len(vocab), 2), np.float32))
    candidates = candidate_features(history, vocab, products, explore=0)
    frame = pd.DataFrame(candidates.features, columns=BASE_FEATURES)
    frame["user"], frame["product"] = candidates.users, vocab.product_ids[candidates.items]
    return frame.set_index(["user", "product"]), products, vocab


def test_share_since_first_counts_the_orders_after_the_first_purchase(table):
    frame, _, _ = table
    assert frame.loc[(0, 1), "up_share_since_first"] == pytest.approx(2 / 4)  # first 3 orders ago
    assert frame.loc[(0, 2), "up_share_since_first"] == pytest.approx(1.0)  # first in the last
    assert frame.loc[(1, 1), "up_share_since_first"] == pytest.approx(1.0)


def test_decayed_shares_weight_recent_orders_more(table):
    frame, _, _ = table
    # Customer 1, product 1: bought 1 and 3 orders ago; the most is 1 + d + d^2 + d^3.
    d = 0.5
    assert frame.loc[(0, 1), "up_decayed_50"] == pytest.approx((d + d**3) / (1 + d + d**2 + d**3))
    assert frame.loc[(1, 1), "up_decayed_80"] == pytest.approx(1.0)  # in every order


def test_product_repurchase_propensity_and_interval(table):
    frame, products, vocab = table
    one = vocab.index_of(np.array([1]))[0]
    three = vocab.index_of(np.array([3]))[0]
    assert products.repurchase[one] == pytest.approx(1.0)  # both buyers bought it again
    assert products.repurchase[three] == pytest.approx(0.0)  # two buyers, once each
    # Customer 1's interval: 14 days over 1 repeat; customer 2's: 14 days over 2 repeats.
    assert products.interval[one] == pytest.approx((14 + 7) / 2)
    # Days since product 1 (7 for customer 1: last bought an order before the last, + 7 to
    # the next order) against that population interval.
    assert frame.loc[(0, 1), "up_days_vs_p_interval"] == pytest.approx(14 / 10.5)
    assert frame.loc[(0, 3), "up_days_vs_p_interval"] == -1.0  # no one bought it twice


def test_dropped_features_leave_the_booster_and_unknown_names_are_refused(prepared):
    data = tuning_set(prepared, np.zeros((len(prepared.vocab), 4), np.float32))
    config = XGBConfig(rounds=5, targets_per_user=1, drop_features=("up_decayed_50",))
    model = XGBoostRecommender(prepared.vocab, config).fit(data)
    assert "up_decayed_50" not in model.booster.feature_names
    assert len(model.booster.feature_names) == len(BASE_FEATURES) - 1
    wrong = XGBoostRecommender(prepared.vocab, XGBConfig(rounds=5, drop_features=("nope",)))
    with pytest.raises(ValueError, match="unknown features.*nope"):
        wrong.fit(data)


def test_the_refit_logs_its_progress_and_time_left(prepared, caplog):
    # A refit at Instacart scale runs for minutes; it used to log nothing until it ended.
    vectors = np.zeros((len(prepared.vocab), 4), np.float32)
    config = XGBConfig(rounds=5, early_stopping_rounds=5, targets_per_user=1)
    model = XGBoostRecommender(prepared.vocab, config).fit(tuning_set(prepared, vectors))
    rounds = model.booster.best_iteration + 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="basket.models.xgb"):
        model.fit(refit_set(prepared, vectors))
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith(f"xgboost refit: {rounds} rounds on ") for line in lines)
    assert any(
        line.startswith(f"xgboost round {rounds}/{rounds}: ") and "at most 0s left" in line
        for line in lines
    ), lines


def test_rows_are_sorted_and_similarities_match_a_plain_computation_across_chunks():
    # Over 1,024 rows, so the chunked dot products cross chunk boundaries; the sort by
    # (customer, product) must hold for the bought and the explored rows together. Baskets
    # may name a product twice (an online request can): each line counts, in the last basket
    # as in the whole history.
    rng = np.random.default_rng(3)
    n_products = 40
    panel = [
        [list(rng.choice(np.arange(1, n_products + 1), rng.integers(1, 6), replace=True))
         for _ in range(rng.integers(1, 5))]
        for _ in range(300)
    ]  # fmt: skip
    assert any(len(set(orders[-1])) < len(orders[-1]) for orders in panel)
    catalogue = pd.DataFrame(
        {
            "product_id": np.arange(1, n_products + 1),
            "product_name": [f"p{i}" for i in range(n_products)],
            "aisle_id": np.arange(n_products) % 4,
            "department_id": np.arange(n_products) % 2,
        }
    )
    history = histories_from(panel)
    vocab = Vocabulary.build(history.product_ids, catalogue, VocabConfig())
    vectors = rng.standard_normal((len(vocab), 8)).astype(np.float32)
    products = ProductTable.build(history, vocab, catalogue, vectors)
    candidates = candidate_features(history, vocab, products, explore=5)
    assert len(candidates.users) > 1024
    key = candidates.users.astype(np.int64) * len(vocab) + candidates.items
    assert np.all(np.diff(key) > 0)
    unit = products.embeddings
    for column, baskets_of in (
        ("emb_history", lambda user: panel[user]),
        ("emb_last_basket", lambda user: panel[user][-1:]),
    ):
        profile = np.stack(
            [
                unit[vocab.index_of(np.concatenate(baskets_of(u)).astype(np.int32))].sum(axis=0)
                for u in range(len(panel))
            ]
        )
        profile /= np.linalg.norm(profile, axis=1, keepdims=True)
        expected = np.sum(unit[candidates.items] * profile[candidates.users], axis=1)
        got = candidates.features[:, BASE_FEATURES.index(column)]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_recall_weights_count_a_hit_as_recall_does():
    from basket.models.xgb import recall_query_weights

    ideal = np.cumsum(1 / np.log2(np.arange(2, 12)))
    weights = recall_query_weights(np.array([0, 0, 1, 1, 1, 3]), np.array([2, 20, 5, 1]))
    # One weight per customer with candidate rows (0, 1 and 3), in order.
    np.testing.assert_allclose(weights, [ideal[1] / 2, ideal[9] / 20, 1.0])


def test_a_ranker_trains_with_one_recall_weight_per_query(prepared):
    data = tuning_set(prepared, np.zeros((len(prepared.vocab), 4), np.float32))
    config = XGBConfig(rounds=5, targets_per_user=2, recall_weights=True)
    model = XGBoostRecommender(prepared.vocab, config).fit(data)
    assert model.booster.best_iteration >= 0
