"""Turning per-product probabilities into one predicted basket.

Two decodings, both chosen between on the validation split:

- threshold: every product with probability >= the model's tuned threshold;
- expected F1 (Ye et al., ICML 2012; the Instacart winners' decoding): with the
  candidates sorted by probability and treated as independent, predict the top
  k that maximises E[F1] = E[2 TP / (k + |truth|)]. The distributions of hits
  inside the top k and outside it are Poisson-binomial, built by an O(n^2)
  dynamic programme over positions, vectorised across users.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from basket.models.ranking import top_k

MAX_CANDIDATES = 40  # products beyond the 40 most probable barely move E[F1]


@lru_cache(maxsize=8)
def _f1_weights(n: int) -> np.ndarray:
    """(n + 1, n + 1, n + 1) F1 of a basket of k with a hits inside it and b outside it,
    2a / (k + a + b), indexed [k, a, b] (row k = 0 unused)."""
    k, a, b = np.ogrid[: n + 1, : n + 1, : n + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = 2.0 * a / (k + a + b)
    weights[0] = 0.0
    return weights


def _hit_distributions(p: np.ndarray) -> np.ndarray:
    """(n + 1, U, n + 1): row k is the distribution of hits among the first k of the (U, n)
    independent items with probabilities `p`, one step of the Poisson-binomial recursion per
    item (the loop is over the n <= MAX_CANDIDATES positions; users are vectorised)."""
    n_users, n = p.shape
    q = 1.0 - p
    out = np.zeros((n + 1, n_users, n + 1))
    out[0, :, 0] = 1.0
    for k in range(1, n + 1):
        previous, current = out[k - 1], out[k]
        np.multiply(previous, q[:, k - 1, None], out=current)
        current[:, 1:] += previous[:, :-1] * p[:, k - 1, None]
    return out


def expected_f1_sizes(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (U, n) probabilities sorted descending: the best basket size k (>= 1) per user and its E[F1]."""
    n_users, n = probabilities.shape
    p = np.clip(probabilities.astype(np.float64), 0.0, 1.0)
    # One recursion over both directions (rows are independent): half the small numpy steps.
    both = _hit_distributions(np.concatenate([p, p[:, ::-1]]))
    inside = both[:, :n_users]  # [k]: hits among the first k
    outside = both[::-1, n_users:]  # [k]: hits among items k..n-1
    # E[F1 | size k] = sum over (a, b) of P(a inside) F1(k, a, b) P(b outside), every k at once.
    expected = np.full((n_users, n + 1), -np.inf)
    weighted = np.matmul(inside[1:], _f1_weights(n)[1:])  # (n, U, n + 1)
    expected[:, 1:] = np.einsum("kub,kub->uk", weighted, outside[1:])
    best = expected.argmax(axis=1)
    return best, expected[np.arange(n_users), best]


def expected_f1_baskets(
    scores: np.ndarray, max_candidates: int = MAX_CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the chosen basket entries of a (U, V) probability matrix."""
    n = min(max_candidates, scores.shape[1])
    top, top_scores = top_k(scores, n)
    sizes, _ = expected_f1_sizes(top_scores)
    keep = np.arange(n)[None, :] < sizes[:, None]
    rows = np.repeat(np.arange(scores.shape[0]), sizes)
    return rows, top[keep]


def threshold_baskets(scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of entries at or above `threshold`."""
    return np.nonzero(scores >= threshold)
