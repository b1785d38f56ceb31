"""One chunk of customers' scores, in the form its model gives them, and what is read from it:
the top k (`top`) and the products at or above a threshold (`at_least`).

Three forms, each giving exactly what the (customers x vocabulary) matrix would:

- `DenseScores`: the matrix itself (`model.score`);
- `SparseScores`: `values` at (rows, cols), `fill[column]` (None: 0) elsewhere
  (`model.score_sparse`: XGBoost's candidates, P-TopFreq, TIFU-KNN);
- `HeadTailScores`: a dense head (the neural output layer, a vocabulary prefix) and sparse
  (rows, cols, values) beyond it, 0 elsewhere (`model.score_parts`: the neural nets).

A chunk is scored once and read many ways: answering reads the top k and the model's
decoding; choosing a decoding on validation reads every option from the same chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from basket.models.decoding import MAX_CANDIDATES, expected_f1_sizes, threshold_baskets
from basket.models.ranking import sparse_top_k, top_k

Calibrate = Callable[[np.ndarray], np.ndarray]


def _identity(values: np.ndarray) -> np.ndarray:
    return values


@dataclass(frozen=True)
class DenseScores:
    """A (users, vocabulary) score matrix."""

    matrix: np.ndarray

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    def top(self, k: int, calibrate: Calibrate = _identity) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of each row's k best of `calibrate(scores)`, best first."""
        return top_k(calibrate(self.matrix), k)

    def at_least(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the scores at or above `threshold`, row by row, columns ascending."""
        return threshold_baskets(self.matrix, threshold)


@dataclass(frozen=True)
class SparseScores:
    """`values` at (rows, cols) of a (n_users, n_products) matrix, `fill[column]` (None: 0) in
    every other cell."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    fill: np.ndarray | None
    n_users: int
    n_products: int

    def top(self, k: int, calibrate: Calibrate = _identity) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of each row's k best of `calibrate(scores)`, best first."""
        fill = None if self.fill is None else calibrate(self.fill)
        return sparse_top_k(
            self.rows, self.cols, calibrate(self.values), self.n_users, self.n_products, k, fill
        )

    def dense(self) -> np.ndarray:
        matrix = np.zeros((self.n_users, self.n_products), dtype=np.float32)
        if self.fill is not None:
            matrix[:] = self.fill
        matrix[self.rows, self.cols] = self.values
        return matrix

    def at_least(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the scores at or above `threshold`, row by row, columns ascending."""
        if threshold <= (0.0 if self.fill is None else self.fill.max(initial=0.0)):
            # Cells without an entry may reach the threshold: only the matrix can say which.
            return threshold_baskets(self.dense(), threshold)
        chosen = np.flatnonzero(self.values >= threshold)
        order = chosen[np.lexsort((self.cols[chosen], self.rows[chosen]))]
        return self.rows[order], self.cols[order]


@dataclass(frozen=True)
class HeadTailScores:
    """A dense (users, head) block for the first vocabulary columns and sparse (rows, cols,
    values) beyond them; 0 elsewhere. `dense_scores` gives the whole matrix when only it can
    answer (a threshold at or below 0)."""

    head: np.ndarray
    tail_rows: np.ndarray
    tail_cols: np.ndarray
    tail_values: np.ndarray
    n_products: int
    dense_scores: Callable[[], np.ndarray]
    # The head's best columns by depth: answering reads the top k and the expected-F1
    # basket's candidates from the same chunk, both from the head's best MAX_CANDIDATES.
    _head_tops: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_users(self) -> int:
        return self.head.shape[0]

    def _head_top(self, depth: int) -> tuple[np.ndarray, np.ndarray]:
        if depth not in self._head_tops:
            self._head_tops[depth] = top_k(self.head, depth)
        return self._head_tops[depth]

    def top(self, k: int, calibrate: Calibrate = _identity) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of each row's k best of `calibrate(scores)`, best first."""
        # The head's best `depth` and the tail's entries hold the whole row's best k: every
        # other head product is beaten by as many as are kept.
        depth = min(max(k, MAX_CANDIDATES), self.head.shape[1])
        head_index, head_values = self._head_top(depth)
        rows = np.concatenate([np.repeat(np.arange(self.n_users), depth), self.tail_rows])
        cols = np.concatenate([head_index.ravel(), self.tail_cols])
        values = calibrate(np.concatenate([head_values.ravel(), self.tail_values]))
        return sparse_top_k(rows, cols, values, self.n_users, self.n_products, k)

    def at_least(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the scores at or above `threshold`, row by row, columns ascending."""
        if threshold <= 0:
            return threshold_baskets(self.dense_scores(), threshold)
        head_rows, head_cols = threshold_baskets(self.head, threshold)
        chosen = self.tail_values >= threshold
        rows = np.concatenate([head_rows, self.tail_rows[chosen]])
        cols = np.concatenate([head_cols, self.tail_cols[chosen]])
        order = np.lexsort((cols, rows))
        return rows[order], cols[order]


Scores = DenseScores | SparseScores | HeadTailScores


def expected_f1_basket(
    scores: Scores, calibrate: Calibrate, n_products: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of each row's expected-F1-optimal basket among its `MAX_CANDIDATES` most
    probable products (`calibrate` turns scores into probabilities)."""
    n = min(MAX_CANDIDATES, n_products)
    top, top_scores = scores.top(n, calibrate)
    sizes, _ = expected_f1_sizes(top_scores)
    keep = np.arange(n)[None, :] < sizes[:, None]
    return np.repeat(np.arange(scores.n_users), sizes), top[keep]


def basket(
    scores: Scores, threshold: float | None, calibrate: Calibrate, n_products: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the predicted baskets: the products at or above `threshold`, or
    (None) the expected-F1-optimal ones."""
    if threshold is None:
        return expected_f1_basket(scores, calibrate, n_products)
    return scores.at_least(threshold)
