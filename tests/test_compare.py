"""The comparison: the winner rule, expected-F1 decoding, XGBoost end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

from basket.models.decoding import expected_f1_baskets, expected_f1_sizes
from basket.training.compare import compare, neural_gain, neural_verdict
from basket.training.significance import bootstrap_means, significance

ORDER = ("p_topfreq", "tifu_knn", "xgboost", "cnngru", "attentiongru")


def _customers(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, n)


def _scores(recall, ndcg=None):
    return {"recall@10": recall, "ndcg@10": recall if ndcg is None else ndcg}


def test_a_complex_candidate_ahead_by_less_than_the_noise_loses_to_the_simpler_one():
    """One real run chose XGBoost by 0.0007 recall@10 over a baseline: now the simpler wins."""
    base = _customers()
    noise = np.random.default_rng(1).normal(0.0, 0.2, base.size)
    ahead = base + (noise - noise.mean()) + 0.003  # 0.003 better on average, noisy per customer
    per_user = {"p_topfreq": _scores(base), "xgboost": _scores(ahead)}
    sure = significance(per_user, "recall@10", "ndcg@10", ORDER)
    assert sure.best == "xgboost" and sure.winner == "p_topfreq"
    assert set(sure.within_noise) == {"p_topfreq", "xgboost"} and sure.runner_up == "xgboost"
    low, high = sure.to_winner["xgboost"]["interval"]
    assert low < 0 < high
    assert "within the noise" in sure.explanation("recall@10")


def test_a_complex_candidate_better_beyond_the_noise_wins():
    base = _customers()
    per_user = {"p_topfreq": _scores(base), "xgboost": _scores(base + 0.05)}
    sure = significance(per_user, "recall@10", "ndcg@10", ORDER)
    assert sure.winner == sure.best == "xgboost" and sure.within_noise == ("xgboost",)
    low, high = sure.to_winner["p_topfreq"]["interval"]
    assert high < 0


def test_equal_recall_goes_to_the_better_ndcg_and_intervals_hold_the_mean():
    base = _customers()
    per_user = {
        "cnngru": _scores(base, base * 0.9),
        "attentiongru": _scores(base, base * 0.95),
    }
    sure = significance(per_user, "recall@10", "ndcg@10", ORDER)
    assert sure.best == "attentiongru"
    # identical recall per customer: the paired difference is exactly 0, so both are within
    # the noise and the simpler (earlier in the order) wins
    assert sure.winner == "cnngru"
    low, high = sure.intervals["cnngru"]["recall@10"]
    assert low < base.mean() < high and high - low < 0.1


def test_the_report_says_plainly_whether_the_neural_nets_add_anything():
    base = _customers()
    noise = np.random.default_rng(1).normal(0.0, 0.2, base.size)
    close = base + (noise - noise.mean()) + 0.002
    metrics = {
        name: {"recall@10": float(values.mean())}
        for name, values in {"xgboost": base, "cnngru": close, "attentiongru": base - 0.1}.items()
    }
    per_user = {"xgboost": base, "cnngru": close, "attentiongru": base - 0.1}
    gain = neural_gain(per_user, metrics, "recall@10", 0.95, 1000)
    assert (gain["neural"], gain["other"]) == ("cnngru", "xgboost")  # the best of each kind
    assert gain["interval"][0] < 0 < gain["interval"][1]
    assert "add nothing beyond the noise" in neural_verdict(gain, "recall@10")
    ahead = {"xgboost": base, "cnngru": base + 0.05}
    metrics = {name: {"recall@10": float(v.mean())} for name, v in ahead.items()}
    gain = neural_gain(ahead, metrics, "recall@10", 0.95, 1000)
    assert neural_verdict(gain, "recall@10").startswith("The neural nets add something")
    behind = {"xgboost": base, "cnngru": base - 0.05}
    metrics = {name: {"recall@10": float(v.mean())} for name, v in behind.items()}
    gain = neural_gain(behind, metrics, "recall@10", 0.95, 1000)
    assert "worse beyond the noise" in neural_verdict(gain, "recall@10")
    assert (
        neural_gain({"xgboost": base}, {"xgboost": {"recall@10": 0.5}}, "recall@10", 0.95, 10)
        is None
    )


def test_the_bootstrap_is_paired_and_repeatable():
    values = np.stack([_customers(), _customers()])
    first = bootstrap_means(values, 200, seed=3)
    np.testing.assert_array_equal(first[:, 0], first[:, 1])  # same customers drawn for both
    np.testing.assert_array_equal(first, bootstrap_means(values, 200, seed=3))
    assert first.shape == (200, 2) and abs(first.mean() - values.mean()) < 0.01


def test_one_bootstrap_for_every_metric_gives_each_metric_its_own_intervals():
    """The draws are shared by every metric; each metric's intervals are those of a bootstrap of
    that metric alone."""
    base = _customers()
    per_user = {
        "p_topfreq": {"recall@10": base, "ndcg@10": base**2},
        "xgboost": {"recall@10": base + 0.01, "ndcg@10": base * 0.5},
    }
    sure = significance(per_user, "recall@10", "ndcg@10", ORDER, samples=300, seed=2)
    for metric in ("recall@10", "ndcg@10"):
        alone = bootstrap_means(
            np.stack([per_user[n][metric] for n in ("p_topfreq", "xgboost")]), 300, seed=2
        )
        for column, name in enumerate(("p_topfreq", "xgboost")):
            low, high = np.percentile(alone[:, column], [2.5, 97.5])
            assert sure.intervals[name][metric] == pytest.approx((low, high))


def test_expected_f1_matches_brute_force_enumeration():
    import itertools

    probabilities = np.array([[0.9, 0.6, 0.35, 0.1]])
    size, value = expected_f1_sizes(probabilities)
    best = {}
    for k in range(1, 5):
        total = 0.0
        for truth in itertools.product([0, 1], repeat=4):
            chance = np.prod(
                [p if t else 1 - p for p, t in zip(probabilities[0], truth, strict=True)]
            )
            total += chance * 2 * sum(truth[:k]) / (k + sum(truth))
        best[k] = total
    assert size[0] == max(best, key=best.get)
    assert value[0] == pytest.approx(max(best.values()))


def brute_force_expected_f1(probabilities: np.ndarray) -> np.ndarray:
    """(U, n) E[F1] of the baskets of sizes 1..n, by enumerating every truth."""
    import itertools

    n_users, n = probabilities.shape
    truths = np.array(list(itertools.product([0, 1], repeat=n)))  # (2^n, n)
    chances = np.prod(
        np.where(truths[None], probabilities[:, None], 1 - probabilities[:, None]), axis=2
    )  # (U, 2^n)
    sizes = np.arange(1, n + 1)
    hits = np.cumsum(truths, axis=1)  # (2^n, n): hits among the first k
    f1 = 2 * hits / (sizes[None] + truths.sum(axis=1)[:, None])  # (2^n, n)
    return chances @ f1


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_expected_f1_of_many_customers_at_once_matches_enumeration(n):
    """Every customer of a batch gets its own best size and E[F1], as if scored alone, for
    spread, skewed and tied probabilities."""
    rng = np.random.default_rng(n)
    raw = np.concatenate(
        [rng.random((6, n)), rng.random((6, n)) ** 4, np.round(rng.random((6, n)), 1)]
    )
    probabilities = -np.sort(-raw, axis=1)
    size, value = expected_f1_sizes(probabilities)
    expected = brute_force_expected_f1(probabilities)
    np.testing.assert_array_equal(size, expected.argmax(axis=1) + 1)
    np.testing.assert_allclose(value, expected.max(axis=1), rtol=1e-12, atol=1e-12)


def test_expected_f1_keeps_more_products_when_more_are_likely():
    sure = np.array([[0.95, 0.9, 0.9, 0.85, 0.05, 0.01]])
    unsure = np.array([[0.6, 0.2, 0.1, 0.05, 0.05, 0.01]])
    rows_sure, _ = expected_f1_baskets(sure)
    rows_unsure, _ = expected_f1_baskets(unsure)
    assert len(rows_sure) == 4 and len(rows_unsure) == 1


def test_xgboost_candidate_trains_scores_and_reloads(prepared, tmp_path):
    from basket.models.base import TrainingSet
    from basket.models.registry import load_model
    from basket.models.top_freq import PTopFreq
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    model = XGBoostRecommender(vocab, XGBConfig(rounds=60, targets_per_user=2)).fit(data)
    result = compare(
        {"xgboost": model, "p_topfreq": PTopFreq(vocab)}, splits.eval_inputs, splits.eval_targets
    )
    assert result.metrics["xgboost"]["recall@10"] > 0.3
    loaded = load_model(model.save(tmp_path / "xgb"))
    np.testing.assert_allclose(
        loaded.score(splits.eval_inputs), model.score(splits.eval_inputs), rtol=1e-6
    )
    assert (tmp_path / "xgb" / "booster.ubj").is_file()


def test_a_run_at_another_k_compares_and_reports_at_that_k(prepared, tmp_path):
    """One k: TrainConfig.k drives the primary metric, the tie-break, the table and the plot.
    Before, primary_metric was fixed at "recall@10" and any other k raised KeyError."""

    from basket.config.run import RunConfig, load_config
    from basket.models.base import TrainingSet
    from basket.models.tifu_knn import TifuKNN
    from basket.models.top_freq import PTopFreq
    from basket.training.compare import write_report

    config = load_config(overrides={"train": {"k": 5}})
    assert config.primary_key == "recall@5"
    splits, vocab = prepared.splits, prepared.vocab
    models = {
        "p_topfreq": PTopFreq(vocab),
        "tifu_knn": TifuKNN(vocab).fit(TrainingSet(splits.eval_inputs, None, vocab)),
    }
    result = compare(models, splits.eval_inputs, splits.eval_targets, 5, config.primary_key)
    report = json.loads(write_report(result, tmp_path).read_text())
    assert report["primary_metric"] == "recall@5"
    assert "recall@5" in (tmp_path / "report.md").read_text()
    with pytest.raises(ValueError, match="one k"):
        _ = RunConfig(primary_metric="recall@10", train=config.train).primary_key


def test_xgboost_can_stack_tifu_knn_and_reloads_with_its_neighbours(prepared, tmp_path):
    """Neighbour features: TIFU-KNN's own and neighbour scores as two more columns; the model
    dir carries the neighbour database, and a model saved without them still loads."""

    from basket.config.run import TifuConfig
    from basket.models.base import TrainingSet
    from basket.models.registry import load_model
    from basket.models.xgb import XGBConfig, XGBoostRecommender
    from basket.models.xgb_features import BASE_FEATURES, NEIGHBOUR_FEATURES

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    config = XGBConfig(rounds=30, targets_per_user=1)
    stacked = XGBoostRecommender(vocab, config, tifu_config=TifuConfig(neighbours=20)).fit(data)
    plain = XGBoostRecommender(vocab, config).fit(data)
    assert stacked.features == BASE_FEATURES + NEIGHBOUR_FEATURES
    assert not set(NEIGHBOUR_FEATURES) & set(plain.features)
    columns = stacked._candidates(splits.eval_inputs).features[:, -2:]
    assert (columns[:, 0] > 0).mean() > 0.5 and (columns[:, 1] > 0).mean() > 0.5
    inputs = splits.eval_inputs.select_users(np.arange(30))
    for name, model in (("stacked", stacked), ("plain", plain)):
        loaded = load_model(model.save(tmp_path / name))
        np.testing.assert_allclose(loaded.score(inputs), model.score(inputs), rtol=1e-6)
    assert (tmp_path / "stacked" / "neighbours" / "database.npz").is_file()
    assert not (tmp_path / "plain" / "neighbours").exists()
    meta = json.loads((tmp_path / "plain" / "model.json").read_text())
    assert meta["tifu_config"] is None and meta["features"] == list(BASE_FEATURES)


def test_xgboost_with_a_ranking_objective_ranks_one_query_per_customer(prepared):
    from basket.models.base import TrainingSet
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    config = XGBConfig(rounds=30, targets_per_user=1, objective="rank:ndcg")
    model = XGBoostRecommender(vocab, config).fit(data)
    result = compare({"xgboost": model}, splits.eval_inputs, splits.eval_targets)
    assert result.metrics["xgboost"]["recall@10"] > 0.3


def test_the_ranking_pair_settings_reach_the_booster_and_change_the_model(prepared):
    from basket.models.base import TrainingSet
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    inputs = splits.eval_inputs.select_users(np.arange(40))
    scores, pairs = {}, {}
    for method, count in (("topk", 32), ("mean", 3)):
        config = XGBConfig(
            rounds=5, early_stopping_rounds=5, targets_per_user=1, objective="rank:ndcg",
            ranking_pair_method=method, ranking_pairs=count,
        )  # fmt: skip
        model = XGBoostRecommender(vocab, config).fit(data)
        learner = json.loads(model.booster.save_config())["learner"]["objective"]
        pairs[method] = learner["lambdarank_param"]
        scores[method] = model.score(inputs)
    assert pairs["mean"]["lambdarank_pair_method"] == "mean"
    assert pairs["mean"]["lambdarank_num_pair_per_sample"] == "3"
    assert pairs["topk"]["lambdarank_num_pair_per_sample"] == "32"
    assert not np.allclose(scores["mean"], scores["topk"])


def test_a_ranking_objective_ranks_every_candidate_above_the_products_that_are_not(prepared):
    """A ranking objective's margins are often negative; scored raw, such candidates fell below
    the 0 of every non-candidate, and popular products the customer never looked at filled the
    top 10 ahead of their own purchases."""
    from basket.models.base import TrainingSet
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    config = XGBConfig(rounds=30, targets_per_user=1, objective="rank:ndcg", explore=0)
    model = XGBoostRecommender(vocab, config).fit(data)
    inputs = splits.eval_inputs.select_users(np.arange(40))
    margins = model.booster.predict(
        xgb.DMatrix(model._candidates(inputs).features, feature_names=list(model.features))
    )
    assert (margins < 0).any(), "the case this test is about: some margins are negative"
    scores = model.score(inputs)
    offsets, bought = inputs.bought()
    rows = np.repeat(np.arange(inputs.n_users), np.diff(offsets))
    assert (scores[rows, vocab.index_of(bought)] > 0).all()


@pytest.mark.parametrize("objective", ["rank:ndcg", "binary:logistic"])
@pytest.mark.parametrize("decoding", ["threshold", "expected_f1"])
def test_xgboost_answers_from_its_candidates_equal_the_answers_from_the_matrix(
    prepared, objective, decoding
):
    """XGBoost scores only its candidates (every other product 0): its top-k and baskets come
    from them, not from a users x catalogue matrix, and are the same answers, short rows
    (fewer candidates than k, filled with the most popular zeros) included."""
    from basket.models.base import TrainingSet, recommend_in_chunks
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    config = XGBConfig(rounds=20, targets_per_user=1, objective=objective, explore=3)
    model = XGBoostRecommender(vocab, config, decoding=decoding, threshold=0.3).fit(data)
    inputs = splits.eval_inputs.select_users(np.arange(60))
    for k in (10, 100):
        sparse = model.recommend(inputs, k)
        dense = recommend_in_chunks(model, inputs, k, chunk=25)
        np.testing.assert_array_equal(sparse.product_ids, dense.product_ids)
        np.testing.assert_array_equal(sparse.scores, dense.scores)
        np.testing.assert_array_equal(sparse.basket_offsets, dense.basket_offsets)
        np.testing.assert_array_equal(sparse.basket_product_ids, dense.basket_product_ids)
    assert (np.diff(dense.basket_offsets) > 0).any()
