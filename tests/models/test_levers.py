"""The quality levers a run chooses on its own validation baskets: the ranker's neighbour
features at its cut points, the repurchase kernel, the blend with TIFU-KNN and the ranker's
settings search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from basket.config.candidates import BY_NAME
from basket.config.run import TifuConfig, load_config
from basket.data.history import holdout_last
from basket.data.vocab import VocabConfig, Vocabulary
from basket.models import xgb as xgb_module
from basket.models.base import TrainingSet
from basket.models.blend import JointRanks, Ranks, reach
from basket.models.registry import load_model
from basket.models.repurchase import FEATURES as KERNEL_FEATURES
from basket.models.repurchase import RepurchaseKernel
from basket.models.xgb import XGBConfig, XGBoostRecommender
from basket.models.xgb_features import NEIGHBOUR_FEATURES, candidate_features
from basket.testing.histories import histories_from
from basket.training.ranker_search import search_ranker
from basket.training.tuning import tune_blend, validation_ranking

PRODUCTS = pd.DataFrame(
    {"product_id": range(1, 10), "product_name": [f"p{i}" for i in range(1, 10)],
     "aisle_id": 1, "department_id": 1}
)  # fmt: skip


def training_set(prepared, valid=True) -> TrainingSet:
    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    if not valid:
        return TrainingSet(splits.eval_inputs, None, vocab, prepared.products, embeddings)
    return TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )


def test_a_training_rows_neighbours_never_hold_a_later_basket(monkeypatch):
    """Customer 2's third basket holds product 9, bought by no one before. At the cut point
    that makes that basket the target, customer 1's neighbour feature for 9 must be 0:
    before the fix, the neighbour database held every basket of the inputs, and the training
    rows saw a neighbour's basket from the same time as their target."""
    full = histories_from([[[1, 2], [1, 2], [1, 3], [1, 2]], [[1, 2], [1, 2], [9], [1, 2]]])
    inputs, valid = holdout_last(full)
    vocab = Vocabulary.build(full.product_ids, PRODUCTS, VocabConfig())
    built = []

    def recording(histories, *args):
        built.append((histories, candidate_features(histories, *args)))
        return built[-1][1]

    monkeypatch.setattr(xgb_module, "candidate_features", recording)
    model = XGBoostRecommender(
        vocab, XGBConfig(explore=9, targets_per_user=1, rounds=2),
        tifu_config=TifuConfig(group_size=1, neighbours=1, alpha=0.5),
    )  # fmt: skip
    model.fit(TrainingSet(inputs, valid, vocab, PRODUCTS, np.ones((len(vocab), 2), np.float32)))
    nine, column = vocab.index_of(np.array([9]))[0], model.features.index(NEIGHBOUR_FEATURES[1])
    (cut, rows), (_, valid_rows) = built[:2]
    assert cut.orders_per_user().tolist() == [2, 2]  # the training rows' cut point
    first = (rows.users == 0) & (rows.items == nine)
    assert first.sum() == 1 and rows.features[first, column][0] == 0.0
    # At the validation basket, customer 2's basket with 9 is in the past, and counts.
    now = (valid_rows.users == 0) & (valid_rows.items == nine)
    assert valid_rows.features[now, column][0] > 0.0


def test_the_repurchase_kernel_learns_each_products_cycle(tmp_path):
    """Product 1 comes back every 7 days, product 2 every 28: the kernel puts each one's bump
    at its own interval, so a week after a purchase 1 is due and 2 is not."""
    weekly = [[1, 3] if i % 4 else [1, 2, 3] for i in range(24)]  # 2 in every 4th order
    history = histories_from([weekly] * 20)
    vocab = Vocabulary.build(history.product_ids, PRODUCTS, VocabConfig())
    kernel = RepurchaseKernel.build(history, vocab)
    one, two = vocab.index_of(np.array([1, 2]))
    assert kernel.interval[one] < 10 < 20 < kernel.interval[two]
    week, month = np.array([7.0]), np.array([28.0])
    assert kernel(np.array([one]), week)[0] > kernel(np.array([two]), week)[0]
    assert kernel(np.array([two]), month)[0] > kernel(np.array([two]), week)[0]
    # Features: 0 for a product never bought; saved and loaded without pickle.
    users, items = np.array([0, 0]), vocab.index_of(np.array([1, 9]))
    features = kernel.features(history, vocab, users, items)
    assert features.shape == (2, len(KERNEL_FEATURES))
    assert (features[0] > 0).all() and (features[1] == 0).all()
    loaded = RepurchaseKernel.load(kernel.save(tmp_path / "kernel.npz"))
    np.testing.assert_array_equal(loaded.features(history, vocab, users, items), features)


def test_ranks_and_the_blend_at_either_end_are_each_models_own_ranking():
    users, items = np.array([0, 0, 0, 1, 1]), np.array([4, 2, 7, 1, 3])
    ranks = Ranks.of(users, items, np.array([0.5, 0.9, 0.5, 0.1, 0.2]), depth=2)
    # Customer 0: 2 (0.9), then 4 and 7 tie (the lower index first); depth 2 keeps two.
    assert list(zip(ranks.users, ranks.items, ranks.ranks, strict=True)) == [
        (0, 2, 0),
        (0, 4, 1),
        (1, 3, 0),
        (1, 1, 1),
    ]
    other = Ranks.of(np.array([0, 0]), np.array([5, 4]), np.array([0.3, 0.2]))
    joint = JointRanks.of(ranks, other, 10)
    for weight, winner in ((0.0, 2), (1.0, 5)):
        scores = joint.scores(weight, 5.0)
        mine = joint.users == 0
        assert joint.items[mine][np.argmax(scores[mine])] == winner
    # Past `reach` in both lists, a product cannot enter a blend's top k at any weight.
    depth = reach(2, (5.0,))
    deep = Ranks.of(np.zeros(depth + 1, int), np.arange(depth + 1), -np.arange(depth + 1.0))
    joint = JointRanks.of(deep, deep, depth + 1)
    assert joint.within(depth).items.tolist() == list(range(depth))


@pytest.fixture(scope="module")
def search_config():
    return load_config(overrides={
        "xgboost": {"rounds": 20, "targets_per_user": 1},
        "tifu_grid": {"group_size": [], "within_decay": [], "group_decay": [], "neighbours": [],
                      "alpha": [0.5], "passes": 1},
        "ranker_search": {"max_depth": [3], "learning_rate": [], "min_child_weight": [],
                          "targets_per_user": [], "explore": [10]},
    })  # fmt: skip


def test_the_ranker_search_keeps_a_setting_only_where_validation_gains(prepared, search_config):
    data = training_set(prepared)
    model, table, levers = search_ranker(data, search_config, lambda: TifuConfig(neighbours=20))
    assert list(table["setting"]) == [
        "(start)",
        "neighbour_features",
        "repurchase_features",
        "max_depth",
        "explore",
    ]
    best = table.iloc[0]["valid_recall"]
    for row in table.iloc[1:].itertuples():
        assert (
            row.kept
            == (
                row.valid_recall > best
                or (row.valid_recall == best and row.valid_ndcg > table.iloc[0]["valid_ndcg"])
            )
            or not row.kept
        )  # kept only on a gain
        assert row.gain_low <= row.gain <= row.gain_high
        if row.kept:
            best = row.valid_recall
    assert validation_ranking(model, data, 10)["recall@10"] == pytest.approx(best)
    assert (model.tifu is not None) == bool(
        table.query("setting == 'neighbour_features'").kept.iloc[0]
    )
    assert set(NEIGHBOUR_FEATURES) <= set(model.features) or model.tifu is None
    assert (model.kernel is not None) == bool(
        table.query("setting == 'repurchase_features'").kept.iloc[0]
    )
    assert {lever["lever"].split(" (")[0] for lever in levers} == {
        "TIFU-KNN's scores as ranker features",
        "the repurchase kernel's features",
        "ranker settings searched",
    }
    # No time left: the settings as given, one fit.
    quick = load_config(overrides={"xgboost": {"rounds": 20, "targets_per_user": 1},
                                   "ranker_search": {"seconds": 0}})  # fmt: skip
    _, table, levers = search_ranker(data, quick, lambda: TifuConfig())
    assert table.empty and levers == []


def test_the_blend_is_never_below_its_better_component_on_validation(
    prepared, search_config, tmp_path
):
    data = training_set(prepared)
    tuned = tune_blend(BY_NAME["blend"], data, search_config)
    blend, grid = tuned.model, tuned.grid
    ranker = validation_ranking(blend.ranker, data, 10)["recall@10"]
    neighbours = validation_ranking(blend.neighbours, data, 10)["recall@10"]
    blended = validation_ranking(blend, data, 10)["recall@10"]
    assert blended >= max(ranker, neighbours) - 1e-9
    # The search read only what can reach a top 10; the model, every product: the same answer.
    assert blended == pytest.approx(grid.loc[grid["chosen"], "valid_recall"].iloc[0])
    assert {0.0, 1.0} <= set(grid["weight"]) and grid["chosen"].sum() == 1
    assert tuned.levers[-1]["lever"].startswith("the blend with TIFU-KNN")
    # Saved and loaded, it answers as it did; a refit keeps its weight.
    inputs = data.inputs.select_users(np.arange(40))
    loaded = load_model(blend.save(tmp_path / "blend"))
    np.testing.assert_array_equal(
        loaded.recommend(inputs, 10).product_ids, blend.recommend(inputs, 10).product_ids
    )
    weight = blend.weight
    blend.fit(training_set(prepared, valid=False))
    assert blend.weight == weight and blend.ranker.booster is not None
