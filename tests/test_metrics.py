"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from basket.models.metrics import (
    basket_f1,
    precision_recall_curve,
    ranking_metrics,
    threshold_baskets,
)

# user 0 wants {2, 9}; user 1 wants {7}; user 2 wants nothing (left out of averages)
OFFSETS = np.array([0, 2, 3, 3])
TRUTH = np.array([2, 9, 7])


def test_ranking_metrics_match_a_hand_computed_case():
    ranked = np.array([[1, 2, 3], [4, 5, -1], [1, 2, 3]])
    metrics = ranking_metrics(ranked, OFFSETS, TRUTH, k=3)
    assert metrics["recall@3"] == pytest.approx((1 / 2 + 0) / 2)
    assert metrics["precision@3"] == pytest.approx((1 / 3 + 0) / 2)
    assert metrics["f1@3"] == pytest.approx((2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)) / 2)
    ideal = 1 + 1 / math.log2(3)
    assert metrics["ndcg@3"] == pytest.approx((1 / math.log2(3)) / ideal / 2)
    assert metrics["hit@3"] == pytest.approx(0.5)


def test_perfect_ranking_scores_one():
    ranked = np.array([[9, 2, -1], [7, -1, -1], [-1, -1, -1]])
    metrics = ranking_metrics(ranked, OFFSETS, TRUTH, k=2)
    assert metrics["recall@2"] == 1.0 and metrics["ndcg@2"] == 1.0 and metrics["hit@2"] == 1.0


def test_a_repeated_recommendation_counts_once():
    ranked = np.array([[2, 2, 2], [7, 7, -1], [1, 1, 1]])
    assert ranking_metrics(ranked, OFFSETS, TRUTH, k=3)["recall@3"] == pytest.approx((0.5 + 1) / 2)


def test_only_the_first_k_ranks_count():
    ranked = np.array([[1, 3, 2], [7, 1, 1], [1, 1, 1]])
    assert ranking_metrics(ranked, OFFSETS, TRUTH, k=2)["recall@2"] == pytest.approx((0 + 1) / 2)


def test_basket_f1_micro_macro_and_samples():
    pred_offsets, pred = np.array([0, 2, 3, 3]), np.array([1, 2, 7])
    scores = basket_f1(pred_offsets, pred, OFFSETS, TRUTH)
    # pairs: TP {(0,2), (1,7)}, FP {(0,1)}, FN {(0,9)}
    assert scores["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # per product: 1 -> 0, 2 -> 1, 7 -> 1, 9 -> 0
    assert scores["f1_macro"] == pytest.approx(0.5)
    # per user with a truth: user 0 -> 2*1/(2+2) = 0.5, user 1 -> 1
    assert scores["f1_samples"] == pytest.approx(0.75)


def test_threshold_baskets_pick_products_at_or_above_the_threshold():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.2]])
    offsets, ids = threshold_baskets(scores, np.array([10, 20, 30]), threshold=0.5)
    assert offsets.tolist() == [0, 2, 2]
    assert ids.tolist() == [10, 30]


def test_repeat_and_new_recall_are_split_by_what_the_user_bought_before():
    from basket.models.metrics import repeat_new_recall

    # user 0 bought {2} before and wants {2, 9}: 2 is a repeat, 9 is new; user 1 bought {7}, wants {7}.
    seen_offsets, seen = np.array([0, 1, 2, 2]), np.array([2, 7])
    ranked = np.array([[2, 1, 3], [4, 5, 6], [1, 1, 1]])
    scores = repeat_new_recall(ranked, OFFSETS, TRUTH, seen_offsets, seen, k=3)
    assert scores["recall_repeat@3"] == pytest.approx((1 + 0) / 2)
    assert scores["recall_new@3"] == pytest.approx(0.0)


@pytest.mark.parametrize("width", [25, 6, 0])
def test_the_precision_recall_curve_equals_ranking_metrics_at_every_k(width):
    """One hit matrix for K = 1..20 (20 passes over 200,000 customers took minutes at scale)."""
    rng = np.random.default_rng(3)
    n_users = 300
    ranked = rng.integers(0, 40, size=(n_users, width)).astype(np.int64)
    ranked[rng.random(ranked.shape) < 0.1] = -1  # padding, and repeats from the small id range
    sizes = rng.integers(0, 6, size=n_users)  # some customers with an empty basket
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    truth = rng.integers(0, 40, size=offsets[-1])
    curve = precision_recall_curve(ranked, offsets, truth, 20)
    for k in range(1, 21):
        expected = ranking_metrics(ranked, offsets, truth, k)
        assert curve["precision"][k - 1] == pytest.approx(expected[f"precision@{k}"], abs=1e-12)
        assert curve["recall"][k - 1] == pytest.approx(expected[f"recall@{k}"], abs=1e-12)
