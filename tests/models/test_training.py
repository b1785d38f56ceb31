"""Training the predictors: determinism, overfitting a tiny set, checkpoints, the grid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from basket.config.candidates import BY_NAME
from basket.config.run import RunConfig, TrainConfig
from basket.data.user_products import N_FEATURES
from basket.models.metrics import ranking_metrics
from basket.models.modules import PredictorConfig
from basket.models.neural import NeuralRecommender
from basket.models.neural_training import fit_net, train_one_epoch, training_examples
from basket.models.ranking import top_k
from basket.testing.networks import CNNGRU, predict
from basket.training.tuning import refit_set, tune_neural, tuning_set

SMALL = PredictorConfig(order_hidden=32, embed_dim=16)
FAST = TrainConfig(epochs=2, pos_weights=(5.0,), targets_per_user=2, batch_size=32)


def _embeddings(vocab, dim=16):
    return np.random.default_rng(0).normal(size=(len(vocab), dim)).astype(np.float32)


def _grid(prepared, config=FAST, name="cnngru"):
    data = tuning_set(prepared, _embeddings(prepared.vocab))
    return tune_neural(BY_NAME[name], data, RunConfig(predictor=SMALL, train=config))


def test_same_seed_gives_the_same_model(prepared):
    first, second = _grid(prepared), _grid(prepared)
    inputs = prepared.splits.eval_inputs.select_users(np.arange(30))
    np.testing.assert_array_equal(first.model.score(inputs), second.model.score(inputs))


def test_grid_table_has_one_row_per_pos_weight_and_chooses_the_best_recall(prepared):
    config = TrainConfig(epochs=2, pos_weights=(5.0, 20.0), targets_per_user=1, batch_size=64)
    grid = _grid(prepared, config)
    assert {"pos_weight", "recall@10", "ndcg@10", "kept_epoch", "chosen"} <= set(grid.grid.columns)
    assert len(grid.grid) == 2 and grid.grid["chosen"].sum() == 1
    chosen = grid.grid[grid.grid["chosen"]].iloc[0]
    assert grid.model.pos_weight == chosen["pos_weight"]
    assert chosen["recall@10"] == grid.grid["recall@10"].max()
    # the epoch log of every fit, with the learning rate each epoch trained at
    assert set(grid.epochs["pos_weight"]) == {5.0, 20.0}
    assert {"epoch", "lr", "loss", "valid_recall@10", "kept"} <= set(grid.epochs.columns)
    assert grid.epochs.groupby("pos_weight")["kept"].sum().tolist() == [1, 1]


class _FlatValidation:
    """Validation whose recall never improves after the first epoch."""

    def ranking(self, net, k):
        return {f"recall@{k}": 0.25}


def test_the_learning_rate_halves_before_early_stopping_ends_training(prepared):
    """Before, ReduceLROnPlateau(patience=1) could first act in the epoch early stopping
    (patience 2) ended training: the rate never changed. Now an epoch without a gain halves it."""
    torch.manual_seed(0)
    history = prepared.splits.valid_inputs.select_users(np.arange(40))
    examples = training_examples(history, prepared.vocab, SMALL, cuts=1)
    net = CNNGRU(SMALL, len(prepared.vocab), N_FEATURES)
    config = TrainConfig(epochs=6, patience=2, batch_size=32, learning_rate=1e-3)
    _, epochs = fit_net(net, examples, 5.0, config, "flat", validation=_FlatValidation())
    assert [row["lr"] for row in epochs] == [1e-3, 1e-3, 5e-4]  # stopped after 2 without gain
    assert [row["kept"] for row in epochs] == [True, False, False]


def test_a_refit_replays_the_kept_epochs_on_the_newer_baskets(prepared):
    embeddings = _embeddings(prepared.vocab)
    tuned = _grid(prepared).model
    inputs = prepared.splits.eval_inputs.select_users(np.arange(25))
    before, log = tuned.score(inputs), list(tuned.epochs)
    refit = tuned.fit(refit_set(prepared, embeddings))
    assert refit.epochs == log  # the tuning log (the refit's budget) is kept
    assert not np.allclose(refit.score(inputs), before)
    # the same refit twice gives the same weights: seeded, and as many epochs as were kept
    again = NeuralRecommender.build(
        "cnngru", SMALL, prepared.vocab, tuned.pos_weight, FAST, head=tuned.head
    )
    again.epochs = log
    again.fit(refit_set(prepared, embeddings))
    np.testing.assert_array_equal(again.score(inputs), refit.score(inputs))


def test_a_refit_without_a_fit_with_validation_is_refused(prepared):
    model = NeuralRecommender.build("cnngru", SMALL, prepared.vocab, 5.0, FAST)
    with pytest.raises(ValueError, match="first fit with validation"):
        model.fit(refit_set(prepared, _embeddings(prepared.vocab)))


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
    # the EV vectors of the output layer's products, the vocabulary's most bought
    assert model.head < len(prepared.vocab)
    assert pd.read_parquet(tmp_path / "model" / "embeddings.parquet").shape == (model.head, 17)


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


def test_the_grid_runs_on_a_sample_and_the_choice_is_fit_on_everyone(prepared):
    config = TrainConfig(
        epochs=1, pos_weights=(5.0, 20.0), targets_per_user=1, batch_size=64, grid_users=60
    )
    tuned = _grid(prepared, config)
    assert tuned.grid["customers"].tolist() == [60, 60]
    final = tuned.epochs[tuned.epochs["all_customers"].fillna(False).astype(bool)]
    assert len(final) == 1 and final["pos_weight"].iloc[0] == tuned.model.pos_weight
    # the shipped model is the fit on every customer, not the sample's
    alone = NeuralRecommender.build(
        "cnngru", SMALL, prepared.vocab, tuned.model.pos_weight, config, tuned.model.head
    )
    alone.fit(tuning_set(prepared, _embeddings(prepared.vocab)))
    inputs = prepared.splits.eval_inputs.select_users(np.arange(20))
    np.testing.assert_array_equal(alone.score(inputs), tuned.model.score(inputs))


def test_an_example_budget_cuts_fewer_baskets_per_customer_then_samples_customers(prepared):
    data = tuning_set(prepared, None)
    n_users = data.inputs.n_users
    assert data.for_examples(5, 10 * n_users) == (data, 5)
    assert data.for_examples(5, 2 * n_users + 1) == (data, 2)
    sampled, cuts = data.for_examples(5, n_users // 3)
    assert cuts == 1 and sampled.inputs.n_users == n_users // 3
    assert set(sampled.inputs.user_ids) <= set(data.inputs.user_ids)


def test_training_reads_at_most_the_example_budget(prepared):
    """At Instacart scale an epoch over 5 cut points of 200,000 customers takes 9 minutes: the
    budget bounds it, whatever the customer count."""
    n_users = prepared.splits.valid_inputs.n_users
    budget = n_users // 2
    config = TrainConfig(epochs=1, pos_weights=(5.0,), targets_per_user=3, max_examples=budget)
    tuned = _grid(prepared, config)
    assert tuned.epochs["examples"].max() <= budget
    unbounded = _grid(prepared, TrainConfig(epochs=1, pos_weights=(5.0,), targets_per_user=3))
    assert unbounded.epochs["examples"].max() > 2 * n_users  # 3 cut points each, most customers


def test_choices_on_validation_read_a_fixed_sample_of_customers(prepared):
    data = tuning_set(prepared, None, valid_users=40)
    inputs, targets = data.validation()
    assert inputs.n_users == 40 and inputs.user_ids.tolist() == targets.user_ids.tolist()
    again, _ = tuning_set(prepared, None, valid_users=40).validation()
    assert again.user_ids.tolist() == inputs.user_ids.tolist()
    everyone, _ = tuning_set(prepared, None).validation()
    assert everyone.n_users == data.inputs.n_users  # the test panel is under the default 20,000
