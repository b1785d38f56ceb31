"""The `Recommender` protocol every candidate implements, and the one way scores become answers.

Every model kind offers the same life cycle: `fit(TrainingSet)` learns (with
validation baskets to stop early on, or without them to refit with the budget
the first fit found), `score`/`recommend` answer, `save`/`load` persist without
pickle. `basket.training.tuning` trains them by name; `basket.models.registry` opens
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
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from basket.config.run import RunConfig, TrainConfig
from basket.data.history import Histories, Targets, sample_positions
from basket.data.vocab import Vocabulary
from basket.models.scored import DenseScores, HeadTailScores, Scores, SparseScores, basket

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
    valid_users: int = RunConfig.valid_users
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
    score_form: ClassVar[str]  # how its scores come: "dense", "sparse", "head_tail" (`scored`)
    vocab: Vocabulary
    threshold: float
    decoding: str  # "threshold" or "expected_f1"

    def fit(self, data: TrainingSet) -> Self:
        """Learn from `data`; with `data.valid_targets` None, refit with the earlier budget."""
        ...

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V) float32 scores of every vocabulary product for each user."""
        ...

    def recommend(self, histories: Histories, k: int = TrainConfig.k) -> Recommendations:
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

    def limit_threads(self, threads: int) -> Self:
        """Score on at most `threads` CPU threads where the model runs its own thread pool (a
        server runs one worker per core); returns the model."""
        ...


def model_threshold(model: Recommender) -> float | None:
    """The model's decoding as `basket.models.scored.basket` takes it: its threshold, or None
    for expected F1."""
    return None if model.decoding == "expected_f1" else model.threshold


def scored(model, part: Histories, form: str = "dense") -> Scores:
    """`part`'s scores in the form `form` names: "dense", `model.score`'s (users x vocabulary)
    matrix; "sparse", `model.score_sparse`'s (rows, columns, values, fill); "head_tail",
    `model.score_parts`'s dense head and sparse tail (see `basket.models.scored`)."""
    n_products = len(model.vocab)
    if form == "dense":
        return DenseScores(model.score(part))
    if form == "sparse":
        return SparseScores(*model.score_sparse(part), part.n_users, n_products)
    if form == "head_tail":
        return HeadTailScores(*model.score_parts(part), n_products, partial(model.score, part))
    raise ValueError(f"unknown score form {form!r}: dense, sparse or head_tail")


def chunks(histories: Histories, chunk: int = CHUNK_USERS):
    """(first user's position, the users of each chunk of at most `chunk`)."""
    for start in range(0, histories.n_users, chunk):
        yield start, histories.select_users(np.arange(start, min(start + chunk, histories.n_users)))


def recommend_in_chunks(
    model, histories: Histories, k: int, chunk: int = CHUNK_USERS, scores: str = "dense"
) -> Recommendations:
    """`model`'s scores (in the form `scores`, see `scored`) on chunks of users, decoded into
    top-k and baskets (shared by every model); every form gives the matrix's answer."""
    ids, values, basket_counts, basket_ids = [], [], [], []
    threshold, n_products = model_threshold(model), len(model.vocab)
    for _, part in chunks(histories, chunk):
        part_scores = scored(model, part, scores)
        index, value = part_scores.top(k)
        rows, cols = basket(part_scores, threshold, model.calibrated, n_products)
        ids.append(model.vocab.product_ids[index])
        values.append(value.astype(np.float32))
        basket_counts.append(np.bincount(rows, minlength=part.n_users))
        basket_ids.append(model.vocab.product_ids[cols])
    width = min(k, n_products)
    return Recommendations(
        user_ids=histories.user_ids,
        product_ids=np.concatenate(ids) if ids else np.zeros((0, width), np.int32),
        scores=np.concatenate(values) if values else np.zeros((0, width), np.float32),
        basket_offsets=np.concatenate(
            [[0], np.cumsum(np.concatenate(basket_counts or [[]]))]
        ).astype(np.int64),
        basket_product_ids=np.concatenate(basket_ids) if basket_ids else np.zeros(0, np.int32),
    )


class ChunkedRecommender:
    """Mixin: `recommend` through `recommend_in_chunks`, for models that define `score` (and
    the score form their `score_form` names)."""

    score_form: ClassVar[str] = "dense"

    def recommend(self, histories: Histories, k: int = TrainConfig.k) -> Recommendations:
        """Top-k by score and the predicted basket (the model's threshold or expected F1), from
        the model's own score form: the same answer as from `score`'s matrix."""
        return recommend_in_chunks(self, histories, k, scores=self.score_form)

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """Scores as they are: models whose scores are not probabilities still try expected-F1
        decoding on validation, and keep it only if it decodes better there."""
        return scores

    def to(self, device: str) -> Self:
        """Models without a torch network score on the CPU whatever the device."""
        return self

    def limit_threads(self, threads: int) -> Self:
        """Models whose CPU work is numpy's or torch's follow torch's global thread setting."""
        return self


def write_model_dir(model_dir: Path, vocab: Vocabulary, meta: dict) -> Path:
    """Create `model_dir` with vocab.parquet and model.json (`meta`); the model adds its weights."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab.save(model_dir / "vocab.parquet")
    (model_dir / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    return model_dir
