"""Product-to-product transitions against counts by hand, and the model that carries them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from basket.data.history import without_newest
from basket.data.vocab import VocabConfig, Vocabulary
from basket.models.transitions import FEATURES, Transitions
from basket.models.xgb import XGBConfig, XGBoostRecommender
from basket.models.xgb_features import ProductTable, built_features, candidate_features
from basket.testing.histories import histories_from
from basket.training.tuning import tuning_set

BASKETS = [
    [[1, 2], [3], [1, 3], [2, 3]],
    [[1], [3, 2], [1, 4]],
    [[2, 4], [1, 3]],
]


def _by_hand(baskets, min_count: int) -> dict[tuple[int, int], float]:
    """P(p in the next order | q in this one) from explicit loops over consecutive orders."""
    pairs, holders = {}, {}
    for orders in baskets:
        for now, after in itertools.pairwise(orders):
            for q in now:
                holders[q] = holders.get(q, 0) + 1
                for p in after:
                    if p != q:
                        pairs[q, p] = pairs.get((q, p), 0) + 1
    return {key: n / holders[key[0]] for key, n in pairs.items() if n >= min_count}


@pytest.fixture()
def vocab():
    history = histories_from(BASKETS)
    products = pd.DataFrame({"product_id": [1, 2, 3, 4], "product_name": list("abcd"),
                             "aisle_id": [1, 1, 2, 2], "department_id": 1})  # fmt: skip
    return history, Vocabulary.build(history.product_ids, products, VocabConfig()), products


@pytest.mark.parametrize("min_count", [1, 2])
def test_transition_probabilities_equal_counts_by_hand(vocab, min_count):
    history, vocab, _ = vocab
    matrix = Transitions.build(history, vocab, min_count=min_count).matrix.tocoo()
    ids = vocab.product_ids
    got = {(ids[q], ids[p]): v for q, p, v in zip(matrix.row, matrix.col, matrix.data, strict=True)}
    expected = _by_hand(BASKETS, min_count)
    assert got.keys() == expected.keys()
    assert all(got[key] == pytest.approx(value) for key, value in expected.items())


def test_a_sample_of_order_pairs_bounds_the_work(vocab):
    history, vocab, _ = vocab
    whole = Transitions.build(history, vocab, min_count=1).matrix
    sampled = Transitions.build(history, vocab, min_count=1, max_pairs=3).matrix
    assert 0 < sampled.nnz < whole.nnz


def test_features_are_the_mean_and_largest_over_the_last_basket(vocab):
    history, vocab, products = vocab
    transitions = Transitions.build(history, vocab, min_count=1)
    table = ProductTable.build(history, vocab, products, np.ones((len(vocab), 2), np.float32))
    candidates = candidate_features(history, vocab, table, explore=4, transitions=transitions)
    columns = built_features(transitions=True, neighbours=False)
    frame = pd.DataFrame(candidates.features, columns=columns)
    frame["user"], frame["product"] = candidates.users, vocab.product_ids[candidates.items]
    frame = frame.set_index(["user", "product"])
    expected = _by_hand(BASKETS, 1)
    for user, orders in enumerate(BASKETS):
        last = orders[-1]
        for product in [1, 2, 3, 4]:
            values = [expected.get((q, product), 0.0) for q in last]
            assert frame.loc[(user, product), FEATURES[0]] == pytest.approx(np.mean(values))
            assert frame.loc[(user, product), FEATURES[1]] == pytest.approx(max(values))


def test_a_model_with_transitions_saves_and_scores_the_same_after_loading(prepared, tmp_path):
    data = tuning_set(prepared, np.zeros((len(prepared.vocab), 4), np.float32))
    config = XGBConfig(rounds=5, targets_per_user=1, transition_features=True)
    model = XGBoostRecommender(prepared.vocab, config).fit(data)
    assert set(FEATURES) <= set(model.booster.feature_names)
    loaded = XGBoostRecommender.load(model.save(tmp_path / "model"))
    inputs = data.inputs.select_users(np.arange(20))
    np.testing.assert_array_equal(loaded.score(inputs), model.score(inputs))
    assert (loaded.transitions.matrix != model.transitions.matrix).nnz == 0


def test_the_model_counts_no_pair_its_training_rows_predict(prepared):
    """Counted over every order, the matrix holds each training row's own (last basket ->
    target) pairs; the booster then trusts a feature no unseen basket has."""
    data = tuning_set(prepared, np.zeros((len(prepared.vocab), 4), np.float32))
    config = XGBConfig(rounds=5, targets_per_user=2, transition_features=True,
                       transition_min_count=1)  # fmt: skip
    model = XGBoostRecommender(prepared.vocab, config).fit(data)
    older = Transitions.build(without_newest(data.inputs, 2), prepared.vocab, min_count=1)
    everything = Transitions.build(data.inputs, prepared.vocab, min_count=1)
    assert (model.transitions.matrix != older.matrix).nnz == 0
    assert everything.matrix.nnz > older.matrix.nnz
