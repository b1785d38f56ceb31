"""The blend candidate: the ranker (XGBoost) and TIFU-KNN, fused by reciprocal rank.

Each model ranks its products for a customer (rank 0 = its best); the blend scores

    weight / (constant + rank in TIFU-KNN) + (1 - weight) / (constant + rank in the ranker)

over every product each model scores (a product one model leaves out gets nothing
from it; every product a customer bought is in the ranker's list). Ranks, not scores: the ranker's margins and TIFU-KNN's decayed
frequencies live on scales that differ from shop to shop. `weight` and
`constant` are chosen on the validation baskets (`basket.training.tuning.tune_blend`);
weight 0 ranks as the ranker does and weight 1 as TIFU-KNN does, so on those
baskets the blend is never below the better of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from basket.data.history import Histories
from basket.data.vocab import Vocabulary
from basket.io.atomic import atomic_dir
from basket.models.base import ChunkedRecommender, TrainingSet, write_model_dir
from basket.models.model_meta import ModelMeta
from basket.models.tifu_knn import TifuKNN
from basket.models.xgb import XGBoostRecommender

WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))  # TIFU-KNN's share, tried
CONSTANTS = (5.0, 20.0, 60.0)  # the constant of reciprocal-rank fusion, tried


@dataclass(frozen=True)
class Ranks:
    """Each customer's scored products of one model: (users, vocabulary indices, ranks)."""

    users: np.ndarray
    items: np.ndarray
    ranks: np.ndarray

    @classmethod
    def of(cls, users: np.ndarray, items: np.ndarray, scores: np.ndarray, depth: int | None = None):
        """The ranks of sparse scores (a customer's products by score, ties to the lower
        index, as `basket.models.ranking.top_k` breaks them), the best `depth` kept (None:
        all)."""
        order = np.lexsort((items, -scores.astype(np.float64), users))
        users, items = users[order], items[order]
        first = np.searchsorted(users, users, side="left")
        ranks = np.arange(len(users)) - first
        if depth is None:
            return cls(users, items, ranks)
        keep = ranks < depth
        return cls(users[keep], items[keep], ranks[keep])


def fuse(
    ranker: Ranks, neighbours: Ranks, weight: float, constant: float, n_products: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, scores) of the reciprocal-rank blend of two models' ranks, sorted by
    customer and product; products that neither list gives anything are left out."""
    users = np.concatenate([ranker.users, neighbours.users]).astype(np.int64)
    items = np.concatenate([ranker.items, neighbours.items]).astype(np.int64)
    gain = np.concatenate(
        [(1.0 - weight) / (constant + ranker.ranks), weight / (constant + neighbours.ranks)]
    )
    keys, inverse = np.unique(users * n_products + items, return_inverse=True)
    summed = np.bincount(inverse, weights=gain, minlength=len(keys))
    kept = summed > 0
    keys = keys[kept]
    return keys // n_products, keys % n_products, summed[kept].astype(np.float32)


@dataclass
class BlendRecommender(ChunkedRecommender):
    """The ranker and TIFU-KNN, each fitted as its own candidate is, fused by rank."""

    vocab: Vocabulary
    ranker: XGBoostRecommender
    neighbours: TifuKNN
    weight: float = 0.5  # TIFU-KNN's share
    constant: float = 20.0
    threshold: float = 0.05
    decoding: str = "threshold"
    kind: ClassVar[str] = "blend"
    score_form: ClassVar[str] = "sparse"  # see basket.models.scored

    def fit(self, data: TrainingSet) -> BlendRecommender:
        """Fit both models on `data` (a refit keeps the ranker's rounds, as its own refit)."""
        self.ranker.fit(data)
        self.neighbours.fit(data)
        return self

    def ranks(self, histories: Histories) -> tuple[Ranks, Ranks]:
        """(the ranker's, TIFU-KNN's) ranks of every customer of `histories`."""
        return (
            Ranks.of(*self.ranker.score_sparse(histories)[:3]),
            Ranks.of(*self.neighbours.score_sparse(histories)[:3]),
        )

    def score_sparse(self, histories: Histories):
        """(users, vocabulary indices, blend scores, None); other products score 0."""
        users, items, scores = fuse(
            *self.ranks(histories), self.weight, self.constant, len(self.vocab)
        )
        return users, items, scores, None

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V) blend scores, 0 outside both models' lists."""
        users, items, scores, _ = self.score_sparse(histories)
        out = np.zeros((histories.n_users, len(self.vocab)), dtype=np.float32)
        out[users, items] = scores
        return out

    def limit_threads(self, threads: int) -> BlendRecommender:
        """The ranker predicts on `threads` threads (see XGBoostRecommender.limit_threads)."""
        self.ranker.limit_threads(threads)
        return self

    def save(self, model_dir: Path, extra: dict | None = None) -> Path:
        """model.json and vocab.parquet, the ranker in ranker/ and TIFU-KNN in neighbours/."""
        meta = {
            "kind": self.kind,
            "threshold": self.threshold,
            "decoding": self.decoding,
            "weight": self.weight,
            "constant": self.constant,
            **(extra or {}),
        }
        with atomic_dir(model_dir) as staging:
            write_model_dir(staging, self.vocab, meta)
            self.ranker.save(staging / "ranker")
            self.neighbours.save(staging / "neighbours")
        return Path(model_dir)

    @classmethod
    def load(cls, model_dir: Path) -> BlendRecommender:
        """Read a model written by `save`."""
        model_dir = Path(model_dir)
        meta = ModelMeta.read(model_dir)
        return cls(
            vocab=Vocabulary.load(model_dir / "vocab.parquet"),
            ranker=XGBoostRecommender.load(model_dir / "ranker"),
            neighbours=TifuKNN.load(model_dir / "neighbours"),
            weight=float(meta["weight"]),
            constant=float(meta["constant"]),
            threshold=meta.threshold,
            decoding=meta.decoding,
        )
