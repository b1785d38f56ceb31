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


@dataclass(frozen=True)
class JointRanks:
    """Every (customer, product) either model ranks, sorted by customer then product, with
    its rank in each (inf where that model leaves it out)."""

    users: np.ndarray
    items: np.ndarray
    ranker: np.ndarray  # float64 ranks, inf: not in the ranker's list
    neighbours: np.ndarray  # float64 ranks, inf: not in TIFU-KNN's list

    @classmethod
    def of(cls, ranker: Ranks, neighbours: Ranks, n_products: int) -> JointRanks:
        """The union of two models' ranks."""
        users = np.concatenate([ranker.users, neighbours.users]).astype(np.int64)
        items = np.concatenate([ranker.items, neighbours.items]).astype(np.int64)
        keys, inverse = np.unique(users * n_products + items, return_inverse=True)
        ranks = np.full((2, len(keys)), np.inf)
        ranks[0, inverse[: len(ranker.users)]] = ranker.ranks
        ranks[1, inverse[len(ranker.users) :]] = neighbours.ranks
        return cls(keys // n_products, keys % n_products, ranks[0], ranks[1])

    def within(self, reach: int) -> JointRanks:
        """The entries ranked within `reach` by either model."""
        keep = np.minimum(self.ranker, self.neighbours) < reach
        return JointRanks(self.users[keep], self.items[keep], self.ranker[keep],
                          self.neighbours[keep])  # fmt: skip

    def scores(self, weight: float, constant: float) -> np.ndarray:
        """Each entry's blend score (float32)."""
        return (
            weight / (constant + self.neighbours) + (1.0 - weight) / (constant + self.ranker)
        ).astype(np.float32)


def reach(k: int, constants: tuple[float, ...] = CONSTANTS) -> int:
    """How deep in either list a product must be to reach any blend's top k: one beyond it in
    both scores at most 1 / (c + reach), below the k-th best of the heavier list's own top k
    (at least 0.5 / (c + k - 1)), for every constant c tried."""
    return int(max(constants)) + 2 * k + 1


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

    def joint_ranks(self, histories: Histories) -> JointRanks:
        """Both models' ranks of every customer of `histories`, joined."""
        return JointRanks.of(*self.ranks(histories), len(self.vocab))

    def score_sparse(self, histories: Histories):
        """(users, vocabulary indices, blend scores, None); other products score 0."""
        joint = self.joint_ranks(histories)
        scores = joint.scores(self.weight, self.constant)
        kept = scores > 0
        return joint.users[kept], joint.items[kept], scores[kept], None

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
