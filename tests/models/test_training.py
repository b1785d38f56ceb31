"""Training the predictors: determinism, overfitting a tiny set, checkpoints, the grid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from basket.config import TrainConfig
from basket.data.user_products import N_FEATURES
from basket.metrics import ranking_metrics
from basket.models.base import top_k
from basket.models.modules import CNNGRU, PredictorConfig
from basket.models.neural import NeuralRecommender
from basket.train import grid_search, predict, train_one_epoch, training_examples

SMALL = PredictorConfig(order_hidden=32, embed_dim=16)
FAST = TrainConfig(
    epochs=2, pos_weights=(5.0,), thresholds=(0.3, 0.5), targets_per_user=2, batch_size=32
)


def _embeddings(vocab, dim=16):
    return np.random.default_rng(0).normal(size=(len(vocab), dim)).astype(np.float32)


def _grid(prepared, config=FAST, name="cnngru"):
    splits = prepared.splits
    return grid_search(
        name, SMALL, config, prepared.vocab, _embeddings(prepared.vocab),
        splits.valid_inputs, splits.valid_inputs, splits.valid_targets,
    )  # fmt: skip


def test_same_seed_gives_the_same_model(prepared):
    first, second = _grid(prepared), _grid(prepared)
    inputs = prepared.splits.eval_inputs.select_users(np.arange(30))
    np.testing.assert_array_equal(first.model.score(inputs), second.model.score(inputs))


def test_grid_table_has_the_plans_columns_and_one_choice(prepared):
    grid = _grid(
        prepared,
        TrainConfig(
            epochs=1,
            pos_weights=(5.0, 20.0),
            thresholds=(0.3, 0.6),
            targets_per_user=1,
            batch_size=64,
        ),
    )
    assert {"pos_weight", "threshold", "f1_micro", "precision@10", "recall@10"} <= set(
        grid.table.columns
    )
    assert len(grid.table) == 4 and grid.table["chosen"].sum() == 1
    chosen = grid.table[grid.table["chosen"]].iloc[0]
    assert grid.model.threshold == chosen["threshold"] and grid.pos_weight == chosen["pos_weight"]
    best_recall = grid.table.groupby("pos_weight")["recall@10"].first().max()
    assert chosen["recall@10"] == best_recall


def test_a_tiny_dataset_can_be_overfit(prepared):
    """Twenty customers and a constant learning rate: the model learns their next baskets by heart."""
    from basket.data.history import holdout_last

    torch.manual_seed(0)
    config = PredictorConfig(order_hidden=32, embed_dim=16, dropout=0.0)
    history = prepared.splits.valid_inputs.select_users(np.arange(20))
    examples = training_examples(history, prepared.vocab, config, cuts=1)
    _, targets = holdout_last(history)
    net = CNNGRU(config, len(prepared.vocab), N_FEATURES)
    optimiser = torch.optim.AdamW(net.parameters(), lr=5e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    settings, generator = TrainConfig(batch_size=4), torch.Generator().manual_seed(0)
    losses = [
        train_one_epoch(net, examples, optimiser, loss_fn, settings, generator) for _ in range(200)
    ]
    # NDCG@10, not recall: some baskets hold more than 10 products.
    ndcg = ranking_metrics(
        prepared.vocab.product_ids[top_k(predict(net, examples), 10)[0]],
        targets.offsets,
        targets.product_ids,
        10,
    )["ndcg@10"]
    assert losses[-1] < 0.1 * losses[0]
    assert ndcg > 0.9


def test_checkpoint_reloads_without_pickle(prepared, tmp_path):
    model = _grid(prepared).model
    model.save(tmp_path / "model", extra={"version": "test-1"})
    state = torch.load(tmp_path / "model" / "weights.pt", weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    loaded = NeuralRecommender.load(tmp_path / "model")
    inputs = prepared.splits.eval_inputs.select_users(np.arange(25))
    np.testing.assert_allclose(loaded.score(inputs), model.score(inputs), rtol=1e-6, atol=1e-7)
    assert loaded.threshold == model.threshold
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["version"] == "test-1" and meta["config"]["encoder"] == "cnn"
    assert pd.read_parquet(tmp_path / "model" / "embeddings.parquet").shape == (
        len(prepared.vocab),
        17,
    )


def test_recommendations_rank_by_score_and_basket_follows_the_threshold(prepared):
    model = _grid(prepared).model
    inputs = prepared.splits.eval_inputs.select_users(np.arange(15))
    answer = model.recommend(inputs, k=10)
    assert answer.product_ids.shape == (15, 10)
    assert (np.diff(answer.scores, axis=1) <= 0).all()
    scores = model.score(inputs)
    expected = (scores >= model.threshold).sum(axis=1)
    np.testing.assert_array_equal(np.diff(answer.basket_offsets), expected)


def test_training_examples_never_hold_an_evaluation_basket(prepared):
    """Training examples and validation come from the evaluation inputs only. (It was
    parametrized by a model name it never used: the examples are the same for every model;
    tests/test_retrain.py trains each candidate on scrambled evaluation baskets.)"""
    splits = prepared.splits
    examples = training_examples(splits.valid_inputs, prepared.vocab, SMALL, cuts=3)
    assert examples.n_users > 0
    eval_orders = set(splits.eval_targets.order_ids)
    assert not eval_orders & set(splits.valid_inputs.order_ids)
