"""Every metric, once: ranking metrics at K and thresholded basket F1.

Pure functions from arrays to floats. Predictions are a ranked matrix of
product ids, (users, K) padded with -1; the truth is ragged (offsets + product
ids), so products a model cannot score still count as misses. Users with an
empty true basket are left out of the averages (there is nothing to recall).

Ranges: every metric lies in [0, 1]; higher is better.
"""

from __future__ import annotations

import numpy as np

PAD = -1


def hit_matrix(ranked: np.ndarray, truth_offsets: np.ndarray, truth_ids: np.ndarray) -> np.ndarray:
    """(U, K) bool: whether the product at each rank is in that user's true basket."""
    ranked = np.asarray(ranked)
    n_users = ranked.shape[0]
    sizes = np.diff(truth_offsets)
    truth_user = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
    stride = int(max(ranked.max(initial=0), np.max(truth_ids, initial=0))) + 2
    truth_keys = truth_user * stride + np.asarray(truth_ids, dtype=np.int64)
    rank_keys = np.arange(n_users, dtype=np.int64)[:, None] * stride + ranked
    return np.isin(rank_keys, truth_keys) & (ranked != PAD)


def _first_unique(ranked: np.ndarray) -> np.ndarray:
    """`ranked` with repeated ids in a row replaced by PAD, so a repeat never counts twice."""
    order = np.argsort(ranked, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(ranked, order, axis=1)
    repeat = np.zeros_like(ranked, dtype=bool)
    repeat[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    mask = np.zeros_like(repeat)
    np.put_along_axis(mask, order, repeat, axis=1)
    return np.where(mask, PAD, ranked)


def per_user_ranking(
    ranked: np.ndarray, truth_offsets: np.ndarray, truth_ids: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """recall@k, precision@k, f1@k, ndcg@k and hit@k of each user with a non-empty truth
    (in user order; users with an empty truth are left out), as float arrays.

    recall = hits / |truth|; precision = hits / k; f1 = their harmonic mean per
    user; ndcg = DCG of the hits / the ideal DCG of min(|truth|, k) hits;
    hit = at least one hit.
    """
    ranked = _first_unique(np.asarray(ranked)[:, :k])
    sizes = np.diff(truth_offsets)
    hits = hit_matrix(ranked, truth_offsets, truth_ids)
    scored = sizes > 0
    n_hits = hits.sum(axis=1)
    recall = np.divide(n_hits, sizes, out=np.zeros(len(sizes)), where=scored)
    precision = n_hits / k
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(len(sizes)), where=n_hits > 0
    )
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount[: hits.shape[1]]).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(sizes, k)]
    ndcg = np.divide(dcg, ideal, out=np.zeros(len(sizes)), where=ideal > 0)
    return {
        f"recall@{k}": recall[scored],
        f"precision@{k}": precision[scored],
        f"f1@{k}": f1[scored],
        f"ndcg@{k}": ndcg[scored],
        f"hit@{k}": (n_hits > 0)[scored].astype(np.float64),
    }


def ranking_metrics(
    ranked: np.ndarray, truth_offsets: np.ndarray, truth_ids: np.ndarray, k: int
) -> dict[str, float]:
    """`per_user_ranking` averaged over users with a non-empty truth (0.0 when there is none)."""
    return averages(per_user_ranking(ranked, truth_offsets, truth_ids, k))


def precision_recall_curve(
    ranked: np.ndarray, truth_offsets: np.ndarray, truth_ids: np.ndarray, depth: int
) -> dict[str, list[float]]:
    """{"precision": [...], "recall": [...]} at K = 1..depth, each equal to `ranking_metrics`
    at that K, from one hit matrix (a ranking's prefix holds the first K answers)."""
    ranked = _first_unique(np.asarray(ranked)[:, :depth])
    sizes = np.diff(truth_offsets)
    scored = sizes > 0
    if not scored.any():
        return {"precision": [0.0] * depth, "recall": [0.0] * depth}
    hits = hit_matrix(ranked, truth_offsets, truth_ids)[scored]
    cumulative = np.cumsum(hits, axis=1) if hits.shape[1] else np.zeros((len(hits), 1), int)
    cuts = np.arange(1, depth + 1)
    n_hits = cumulative[:, np.minimum(cuts, cumulative.shape[1]) - 1]  # (users, depth)
    return {
        "precision": (n_hits / cuts).mean(axis=0).tolist(),
        "recall": (n_hits / sizes[scored][:, None]).mean(axis=0).tolist(),
    }


def averages(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean of each per-user metric array (0.0 for an empty one)."""
    return {name: float(values.mean()) if values.size else 0.0 for name, values in per_user.items()}


def basket_f1(
    pred_offsets: np.ndarray,
    pred_ids: np.ndarray,
    truth_offsets: np.ndarray,
    truth_ids: np.ndarray,
) -> dict[str, float]:
    """F1 of predicted baskets (ragged sets) against the true ones.

    - f1_micro: 2 TP / (2 TP + FP + FN) over all (user, product) pairs.
    - f1_macro: F1 per product, averaged over products that are in a true or a
      predicted basket (label-averaged, as scikit-learn's `average="macro"`).
    - f1_samples: F1 per user, averaged over users with a non-empty truth (the
      Instacart competition's "mean F1"); an empty prediction scores 0.
    - precision_samples / recall_samples: per-user precision (0 for an empty
      prediction) and recall, averaged over the same users.
    """
    n_users = len(truth_offsets) - 1
    pred_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(pred_offsets))
    truth_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth_offsets))
    stride = int(max(np.max(pred_ids, initial=0), np.max(truth_ids, initial=0))) + 1
    pred_keys = np.unique(pred_user * stride + np.asarray(pred_ids, dtype=np.int64))
    truth_keys = np.unique(truth_user * stride + np.asarray(truth_ids, dtype=np.int64))
    true_positive = np.intersect1d(pred_keys, truth_keys, assume_unique=True)

    tp, fp, fn = (
        len(true_positive),
        len(pred_keys) - len(true_positive),
        len(truth_keys) - len(true_positive),
    )
    micro = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0

    def per(group: np.ndarray, keys: np.ndarray, size: int) -> np.ndarray:
        return np.bincount(group(keys), minlength=size)

    by_user = lambda keys: keys // stride  # noqa: E731
    by_product = lambda keys: keys % stride  # noqa: E731
    tp_u, pred_u, truth_u = (
        per(by_user, x, n_users) for x in (true_positive, pred_keys, truth_keys)
    )
    denominator_u = pred_u + truth_u
    f1_u = np.divide(2 * tp_u, denominator_u, out=np.zeros(n_users), where=denominator_u > 0)
    scored = truth_u > 0
    samples = float(f1_u[scored].mean()) if scored.any() else 0.0
    precision_u = np.divide(tp_u, pred_u, out=np.zeros(n_users), where=pred_u > 0)
    recall_u = np.divide(tp_u, truth_u, out=np.zeros(n_users), where=scored)

    tp_p, pred_p, truth_p = (
        per(by_product, x, stride) for x in (true_positive, pred_keys, truth_keys)
    )
    denominator_p = pred_p + truth_p
    present = denominator_p > 0
    macro = float((2 * tp_p[present] / denominator_p[present]).mean()) if present.any() else 0.0
    return {
        "f1_micro": micro,
        "f1_macro": macro,
        "f1_samples": samples,
        "precision_samples": float(precision_u[scored].mean()) if scored.any() else 0.0,
        "recall_samples": float(recall_u[scored].mean()) if scored.any() else 0.0,
    }


def threshold_baskets(scores: np.ndarray, product_ids: np.ndarray, threshold: float):
    """Ragged predicted baskets from a (U, P) probability matrix: products scoring >= threshold.

    Returns (offsets, product ids) for `basket_f1`.
    """
    rows, cols = np.nonzero(np.asarray(scores) >= threshold)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=scores.shape[0]))])
    return offsets, np.asarray(product_ids)[cols]


def repeat_new_recall(
    ranked: np.ndarray,
    truth_offsets: np.ndarray,
    truth_ids: np.ndarray,
    seen_offsets: np.ndarray,
    seen_ids: np.ndarray,
    k: int,
) -> dict[str, float]:
    """Recall@k on repeat items (bought before by that user) and on new items, separately.

    `seen_*` is each user's set of previously bought product ids (ragged). Each
    recall averages over users whose truth holds at least one item of that kind.
    """
    n_users = len(truth_offsets) - 1
    stride = (
        int(
            max(
                np.max(ranked, initial=0), np.max(truth_ids, initial=0), np.max(seen_ids, initial=0)
            )
        )
        + 2
    )
    truth_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth_offsets))
    seen_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen_offsets))
    truth_keys = truth_user * stride + np.asarray(truth_ids, dtype=np.int64)
    is_repeat = np.isin(truth_keys, seen_user * stride + np.asarray(seen_ids, dtype=np.int64))
    ranked = _first_unique(np.asarray(ranked)[:, :k])
    rank_keys = np.arange(n_users, dtype=np.int64)[:, None] * stride + ranked
    found = np.isin(truth_keys, rank_keys[ranked != PAD])
    out = {}
    for name, kind in (("repeat", is_repeat), ("new", ~is_repeat)):
        wanted = np.bincount(truth_user[kind], minlength=n_users)
        hit = np.bincount(truth_user[kind & found], minlength=n_users)
        scored = wanted > 0
        out[f"recall_{name}@{k}"] = (
            float((hit[scored] / wanted[scored]).mean()) if scored.any() else 0.0
        )
    return out
