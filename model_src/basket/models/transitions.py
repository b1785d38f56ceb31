"""Product-to-product transitions: how often a product is in a customer's next order after
another product was in this one (a first-order Markov chain over baskets, as FPMC's).

`Transitions.build` counts, over consecutive orders of the same customer, every pair
(q in the order, p in the next order, q != p) and keeps pairs seen at least `min_count`
times as P(p in the next order | q in this order), a sparse (V, V) matrix. `features` reads
it at (customer, candidate) rows: the mean and the largest probability over the products
of the customer's last basket. Memory is bounded by `max_pairs` (a seeded sample of the
consecutive order pairs when there are more), never by catalogue x catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from basket.data.history import Histories, index_ranges, offsets_from_counts
from basket.data.vocab import Vocabulary

FEATURES = ("trans_mean", "trans_max")
_CHUNK_PAIRS = 1 << 22  # pairs expanded at a time (each costs a few int64 arrays)
_CHUNK_ROWS = 1 << 19  # candidate rows looked up at a time


@dataclass(frozen=True)
class Transitions:
    """P(product p in the next order | product q in this one), q != p, as a CSR (V, V)."""

    matrix: sp.csr_matrix

    @classmethod
    def build(
        cls,
        histories: Histories,
        vocab: Vocabulary,
        min_count: int = 2,
        max_pairs: int = 50_000_000,
        seed: int = 0,
    ) -> Transitions:
        """Count product pairs over consecutive orders of `histories` (model inputs only)."""
        n = len(vocab)
        items = vocab.index_of(histories.product_ids).astype(np.int64)
        sizes = histories.basket_sizes().astype(np.int64)
        per_user = histories.orders_per_user()
        has_next = np.ones(len(sizes), dtype=bool)
        has_next[histories.order_offsets[1:][per_user > 0] - 1] = False
        first = np.flatnonzero(has_next)
        pairs = sizes[first] * sizes[first + 1]
        if pairs.sum() > max_pairs:
            first = np.random.default_rng(seed).permutation(first)
            keep = np.cumsum(sizes[first] * sizes[first + 1]) <= max_pairs
            first = np.sort(first[keep])
            pairs = sizes[first] * sizes[first + 1]
        keys, counts = [], []
        bounds = np.searchsorted(
            np.cumsum(pairs), np.arange(_CHUNK_PAIRS, pairs.sum(), _CHUNK_PAIRS)
        )
        for part in np.split(first, bounds):
            key, count = _pair_counts(part, items, sizes, histories.line_offsets, n)
            keys.append(key)
            counts.append(count)
        key, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        count = np.bincount(inverse, weights=np.concatenate(counts))
        frequent = count >= min_count
        key, count = key[frequent], count[frequent]
        # Orders holding q that have a next order: the denominator of P(p next | q now).
        from_lines = items[
            index_ranges(histories.line_offsets[first], histories.line_offsets[first + 1])
        ]
        holders = np.bincount(from_lines[from_lines >= 0], minlength=n)
        q, p = key // n, key % n
        values = (count / np.maximum(holders[q], 1)).astype(np.float32)
        matrix = sp.csr_matrix(
            (values, p.astype(np.int32), offsets_from_counts(np.bincount(q, minlength=n))),
            shape=(n, n),
        )
        return cls(matrix)

    def features(
        self, histories: Histories, vocab: Vocabulary, users: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """(R, 2) float32 at rows (user position, vocabulary index): the mean and the largest
        P(item next | q) over the in-vocabulary products q of the user's last basket (0 when
        it has none)."""
        last = histories.order_offsets[1:] - 1
        has_orders = histories.orders_per_user() > 0
        start = np.where(has_orders, histories.line_offsets[np.maximum(last, 0)], 0)
        stop = np.where(has_orders, histories.line_offsets[np.maximum(last, 0) + 1], 0)
        out = np.zeros((len(users), 2), dtype=np.float32)
        for first in range(0, len(users), _CHUNK_ROWS):
            rows = slice(first, first + _CHUNK_ROWS)
            u, p = users[rows], items[rows]
            widths = stop[u] - start[u]
            row = np.repeat(np.arange(len(u)), widths)
            q = vocab.index_of(histories.product_ids[index_ranges(start[u], stop[u])])
            known = q >= 0
            values = np.zeros(len(q), dtype=np.float32)
            values[known] = np.asarray(self.matrix[q[known], p[row[known]]]).ravel()
            out[rows, 0] = np.bincount(row, weights=values, minlength=len(u)) / np.maximum(
                widths, 1
            )
            nonempty = widths > 0
            if nonempty.any():
                starts = offsets_from_counts(widths)[:-1][nonempty]
                out[np.arange(first, first + len(u))[nonempty], 1] = np.maximum.reduceat(
                    values, starts
                )
        return out

    def save(self, path: Path) -> None:
        """The matrix as a scipy .npz (no pickle)."""
        sp.save_npz(path, self.matrix, compressed=False)

    @classmethod
    def load(cls, path: Path) -> Transitions:
        """Inverse of `save`."""
        return cls(sp.load_npz(path).tocsr())


def _pair_counts(
    first: np.ndarray, items: np.ndarray, sizes: np.ndarray, line_offsets: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys q * n + p and their counts over the pairs of orders (first, first + 1)."""
    a, b = sizes[first], sizes[first + 1]
    pairs = a * b
    pair_of = np.repeat(np.arange(len(first)), pairs)
    k = np.arange(pairs.sum()) - np.repeat(offsets_from_counts(pairs)[:-1], pairs)
    q = items[line_offsets[first][pair_of] + k // b[pair_of]]
    p = items[line_offsets[first + 1][pair_of] + k % b[pair_of]]
    valid = (q >= 0) & (p >= 0) & (q != p)
    return np.unique(q[valid] * n + p[valid], return_counts=True)
