"""The `Recommender` protocol every candidate implements, and the one way scores become answers.

A recommender scores every product of its vocabulary for each user of a
`Histories` (`score`, a (users, V) float32 matrix, higher is better; for the
torch and XGBoost models a probability). `recommend` turns scores into the
top-K ranking and the predicted basket (products scoring at or above the
model's tuned threshold), in chunks of users so memory stays bounded. Batch
scoring, the TorchServe handler and Triton all call `recommend`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from basket.data.history import Histories
from basket.data.vocab import Vocabulary
from basket.models.decoding import expected_f1_baskets, threshold_baskets

CHUNK_USERS = 2048


@dataclass(frozen=True)
class Recommendations:
    """Top-K products per user (vocabulary product ids, -1 padded) and the predicted baskets."""

    user_ids: np.ndarray  # (U,)
    product_ids: np.ndarray  # (U, K) int32
    scores: np.ndarray  # (U, K) float32
    basket_offsets: np.ndarray  # (U + 1,) int64
    basket_product_ids: np.ndarray  # (B,) int32


@runtime_checkable
class Recommender(Protocol):
    """What every candidate model offers."""

    kind: ClassVar[str]
    vocab: Vocabulary
    threshold: float

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V) float32 scores of every vocabulary product for each user."""
        ...

    def recommend(self, histories: Histories, k: int = 10) -> Recommendations:
        """Top-k and thresholded basket for every user of `histories`."""
        ...

    def save(self, model_dir: Path, extra: dict | None = None) -> Path:
        """Write weights and metadata (plus `extra` in model.json) that load without pickle."""
        ...


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the k best columns per row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def decode_baskets(model, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of each user's predicted basket, by the model's `decoding`."""
    if getattr(model, "decoding", "threshold") == "expected_f1":
        calibrate = getattr(model, "calibrated", None)
        return expected_f1_baskets(calibrate(scores) if calibrate else scores)
    return threshold_baskets(scores, model.threshold)


def recommend_in_chunks(
    model, histories: Histories, k: int, chunk: int = CHUNK_USERS
) -> Recommendations:
    """`model.score` on chunks of users, decoded into top-k and baskets (shared by every model)."""
    ids, scores, basket_counts, basket_ids = [], [], [], []
    for start in range(0, histories.n_users, chunk):
        part = histories.select_users(np.arange(start, min(start + chunk, histories.n_users)))
        matrix = model.score(part)
        index, value = top_k(matrix, k)
        ids.append(model.vocab.product_ids[index])
        scores.append(value.astype(np.float32))
        rows, cols = decode_baskets(model, matrix)
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


def write_model_dir(model_dir: Path, vocab: Vocabulary, meta: dict) -> Path:
    """Create `model_dir` with vocab.parquet and model.json (`meta`); the model adds its weights."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab.save(model_dir / "vocab.parquet")
    (model_dir / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    return model_dir
