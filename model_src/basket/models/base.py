"""The `Recommender` protocol every candidate implements, and the one way scores become answers.

Every model kind offers the same life cycle: `fit(TrainingSet)` learns (with
validation baskets to stop early on, or without them to refit with the budget
the first fit found), `score`/`recommend` answer, `save`/`load` persist without
pickle. `basket.candidates` trains them by name; `basket.models.registry` opens
any saved one; `tests/models/test_contract.py` runs the same contract on each.

A recommender scores every product of its vocabulary for each user of a
`Histories` (`score`, a (users, V) float32 matrix, higher is better; for the
torch and XGBoost models a probability). `recommend` turns scores into the
top-K ranking and the predicted basket (products scoring at or above the
model's tuned threshold), in chunks of users so memory stays bounded. Batch
scoring, the TorchServe handler and Triton all call `recommend`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from basket.data.history import Histories, Targets, sample_positions
from basket.data.vocab import Vocabulary
from basket.models.decoding import (
    MAX_CANDIDATES,
    expected_f1_baskets,
    expected_f1_sizes,
    threshold_baskets,
)
from basket.models.ranking import sparse_top_k, top_k

CHUNK_USERS = 2048


@dataclass(frozen=True)
class Recommendations:
    """Top-K products per user (vocabulary product ids, -1 padded) and the predicted baskets."""

    user_ids: np.ndarray  # (U,)
    product_ids: np.ndarray  # (U, K) int32
    scores: np.ndarray  # (U, K) float32
    basket_offsets: np.ndarray  # (U + 1,) int64
    basket_product_ids: np.ndarray  # (B,) int32


@dataclass(frozen=True)
class TrainingSet:
    """What a candidate learns from.

    `inputs`: every order the model may see (its training labels come from cut
    points inside them); `valid_targets`: the basket after each customer's
    inputs, to stop early and tune on, or None to refit with the budget (epochs,
    rounds) the fit with validation found; the vocabulary, and for the models
    that use them the catalogue and the EV file's product vectors (V, d).
    """

    inputs: Histories
    valid_targets: Targets | None
    vocab: Vocabulary
    products: pd.DataFrame | None = None
    embeddings: np.ndarray | None = None
    # Early stopping and every choice on validation read at most this many customers' baskets
    # (a fixed random sample): scoring every product for 200,000 customers is 8 GB.
    valid_users: int = 20_000
    _derived: dict = field(default_factory=dict, compare=False, repr=False)

    def sample(self, users: int, seed: int = 0) -> TrainingSet:
        """The same set for at most `users` customers drawn at random (all when fewer)."""
        if self.inputs.n_users <= users:
            return self
        keep = sample_positions(self.inputs.n_users, users, seed)
        targets = None if self.valid_targets is None else self.valid_targets.select_users(keep)
        return TrainingSet(
            self.inputs.select_users(keep),
            targets,
            self.vocab,
            self.products,
            self.embeddings,
            self.valid_users,
        )

    def validation(self) -> tuple[Histories, Targets]:
        """(inputs, validation baskets) of at most `valid_users` customers: what early stopping,
        the grids and the decoding choice are measured on."""
        if self.valid_targets is None:
            raise ValueError("this set has no validation baskets (a refit set)")
        return self.derived(("validation",), self._validation)

    def _validation(self) -> tuple[Histories, Targets]:
        if self.inputs.n_users <= self.valid_users:
            return self.inputs, self.valid_targets
        keep = sample_positions(self.inputs.n_users, self.valid_users, seed=1)
        return self.inputs.select_users(keep), self.valid_targets.select_users(keep)

    def for_examples(self, cuts: int, max_examples: int, seed: int = 0) -> tuple[TrainingSet, int]:
        """(customers, cut points per customer) giving at most `max_examples` training examples
        when every customer would give `cuts`: fewer cut points per customer first (each
        customer keeps their newest), then a random sample of customers with one each."""
        n_users = self.inputs.n_users
        per_user = max(1, min(cuts, max_examples // max(n_users, 1)))
        return (self if n_users <= max_examples else self.sample(max_examples, seed)), per_user

    def derived(self, key: tuple, build: Callable[[], Any]) -> Any:
        """`build()` once per `key` for this set: the grid fits one model per pos_weight on the
        same encoded examples, and encoding them is not free at scale."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]


@runtime_checkable
class Recommender(Protocol):
    """What every candidate model offers."""

    kind: ClassVar[str]
    vocab: Vocabulary
    threshold: float
    decoding: str  # "threshold" or "expected_f1"

    def fit(self, data: TrainingSet) -> Self:
        """Learn from `data`; with `data.valid_targets` None, refit with the earlier budget."""
        ...

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V) float32 scores of every vocabulary product for each user."""
        ...

    def recommend(self, histories: Histories, k: int = 10) -> Recommendations:
        """Top-k and thresholded basket for every user of `histories`."""
        ...

    def save(self, model_dir: Path, extra: dict | None = None) -> Path:
        """Write weights and metadata (plus `extra` in model.json) that load without pickle."""
        ...

    @classmethod
    def load(cls, model_dir: Path) -> Self:
        """The model `save` wrote to `model_dir`."""
        ...

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """`score`'s output as probabilities for expected-F1 decoding."""
        ...

    def to(self, device: str) -> Self:
        """Score on `device` ("auto", "cpu", "cuda") where the model can; returns the model."""
        ...


def decode_baskets(model: Recommender, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of each user's predicted basket, by the model's `decoding`."""
    if model.decoding == "expected_f1":
        return expected_f1_baskets(model.calibrated(scores))
    return threshold_baskets(scores, model.threshold)


def _dense_answer(model, part: Histories, k: int):
    matrix = model.score(part)
    index, value = top_k(matrix, k)
    return (index, value, *decode_baskets(model, matrix))


def _sparse_answer(model, part: Histories, k: int):
    rows, cols, values, fill = model.score_sparse(part)
    n_users, n_products = part.n_users, len(model.vocab)
    index, value = sparse_top_k(rows, cols, values, n_users, n_products, k, fill)
    if model.decoding == "expected_f1":
        calibrate = model.calibrated
        n = min(MAX_CANDIDATES, n_products)
        top, top_scores = sparse_top_k(
            rows, cols, calibrate(values), n_users, n_products, n,
            None if fill is None else calibrate(fill),
        )  # fmt: skip
        sizes, _ = expected_f1_sizes(top_scores)
        keep = np.arange(n)[None, :] < sizes[:, None]
        return index, value, np.repeat(np.arange(n_users), sizes), top[keep]
    if model.threshold <= (0.0 if fill is None else fill.max(initial=0.0)):
        # Products without an entry may reach the threshold: only the matrix can say which.
        dense = np.zeros((n_users, n_products), dtype=np.float32)
        if fill is not None:
            dense[:] = fill
        dense[rows, cols] = values
        return (index, value, *threshold_baskets(dense, model.threshold))
    chosen = np.flatnonzero(values >= model.threshold)
    order = chosen[np.lexsort((cols[chosen], rows[chosen]))]  # as np.nonzero: row, then column
    return index, value, rows[order], cols[order]


def _head_tail_answer(model, part: Histories, k: int):
    head, tail_rows, tail_cols, tail_values = model.score_parts(part)
    n_users, n_products = part.n_users, len(model.vocab)
    # The head's best (at least k and the expected-F1 depth) and the tail's entries hold the
    # whole row's best: every other head product is beaten by as many as are kept.
    depth = min(max(k, MAX_CANDIDATES), head.shape[1])
    head_index, head_values = top_k(head, depth)
    rows = np.concatenate([np.repeat(np.arange(n_users), depth), tail_rows])
    cols = np.concatenate([head_index.ravel(), tail_cols])
    values = np.concatenate([head_values.ravel(), tail_values])
    index, value = sparse_top_k(rows, cols, values, n_users, n_products, k)
    if model.decoding == "expected_f1":
        n = min(MAX_CANDIDATES, n_products)
        top, top_scores = sparse_top_k(rows, cols, model.calibrated(values), n_users, n_products, n)
        sizes, _ = expected_f1_sizes(top_scores)
        keep = np.arange(n)[None, :] < sizes[:, None]
        return index, value, np.repeat(np.arange(n_users), sizes), top[keep]
    if model.threshold <= 0:
        return (index, value, *threshold_baskets(model.score(part), model.threshold))
    head_rows, head_cols = threshold_baskets(head, model.threshold)
    chosen = tail_values >= model.threshold
    rows = np.concatenate([head_rows, tail_rows[chosen]])
    cols = np.concatenate([head_cols, tail_cols[chosen]])
    order = np.lexsort((cols, rows))
    return index, value, rows[order], cols[order]


ANSWERS = {"dense": _dense_answer, "sparse": _sparse_answer, "head_tail": _head_tail_answer}


def recommend_in_chunks(
    model, histories: Histories, k: int, chunk: int = CHUNK_USERS, scores: str = "dense"
) -> Recommendations:
    """`model.score` on chunks of users, decoded into top-k and baskets (shared by every model).
    How the model's scores come (`scores`), the answers being the same as from the matrix:
    "dense", `model.score`'s (users x vocabulary) matrix; "sparse", `model.score_sparse`'s
    (rows, columns, values, fill): `values` at (rows, columns), `fill[column]` (None: 0)
    elsewhere; "head_tail", `model.score_parts`'s dense first columns (head) and sparse
    (rows, columns, values) beyond them, 0 elsewhere."""
    answer = ANSWERS[scores]
    ids, scores, basket_counts, basket_ids = [], [], [], []
    for start in range(0, histories.n_users, chunk):
        part = histories.select_users(np.arange(start, min(start + chunk, histories.n_users)))
        index, value, rows, cols = answer(model, part, k)
        ids.append(model.vocab.product_ids[index])
        scores.append(value.astype(np.float32))
        basket_counts.append(np.bincount(rows, minlength=part.n_users))
        basket_ids.append(model.vocab.product_ids[cols])
    width = min(k, len(model.vocab))
    return Recommendations(
        user_ids=histories.user_ids,
        product_ids=np.concatenate(ids) if ids else np.zeros((0, width), np.int32),
        scores=np.concatenate(scores) if scores else np.zeros((0, width), np.float32),
        basket_offsets=np.concatenate(
            [[0], np.cumsum(np.concatenate(basket_counts or [[]]))]
        ).astype(np.int64),
        basket_product_ids=np.concatenate(basket_ids) if basket_ids else np.zeros(0, np.int32),
    )


class ChunkedRecommender:
    """Mixin: `recommend` through `recommend_in_chunks`, for models that define `score`."""

    def recommend(self, histories: Histories, k: int = 10) -> Recommendations:
        """Top-k by score and the predicted basket (the model's threshold or expected F1)."""
        return recommend_in_chunks(self, histories, k)

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """Scores as they are: models whose scores are not probabilities still try expected-F1
        decoding on validation, and keep it only if it decodes better there."""
        return scores

    def to(self, device: str) -> Self:
        """Models without a torch network score on the CPU whatever the device."""
        return self


def write_model_dir(model_dir: Path, vocab: Vocabulary, meta: dict) -> Path:
    """Create `model_dir` with vocab.parquet and model.json (`meta`); the model adds its weights."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab.save(model_dir / "vocab.parquet")
    (model_dir / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    return model_dir
