"""P-TopFreq: each customer's most frequent products, ties broken by recency, filled by popularity.

The reference every learned model must beat: in next-basket data most items of
the next basket are repeats of the customer's own past purchases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from basket.data.history import Histories
from basket.data.user_products import user_product_stats
from basket.data.vocab import Vocabulary
from basket.io.atomic import atomic_dir
from basket.models.base import (
    ChunkedRecommender,
    TrainingSet,
    write_model_dir,
)
from basket.models.model_meta import ModelMeta


@dataclass
class PTopFreq(ChunkedRecommender):
    """Score = own purchase count + recency tie-break + a popularity fill below any own product."""

    vocab: Vocabulary
    threshold: float = 0.5  # share of the customer's orders that held the product
    decoding: str = "threshold"
    kind: ClassVar[str] = "p_topfreq"
    score_form: ClassVar[str] = "sparse"  # see basket.models.scored

    def fit(self, data: TrainingSet) -> PTopFreq:
        """Nothing to learn: the scores come from each customer's own history at scoring time."""
        return self

    def score_sparse(self, histories: Histories):
        """(users, vocabulary indices, scores) of each customer's own products, and the
        popularity fill every other product scores; see `score`."""
        stats = user_product_stats(histories, self.vocab)
        row, entry = stats.rows(np.arange(histories.n_users))
        share = stats.counts[entry] / np.maximum(stats.n_orders[row], 1)
        values = (share + 1e-3 * np.exp(-stats.orders_since[entry])).astype(np.float32)
        popularity = 1e-6 * (1.0 - np.arange(len(self.vocab)) / max(len(self.vocab), 1))
        return row, stats.items[entry].astype(np.int64), values, popularity.astype(np.float32)

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V): share of orders with the product, +1e-3 x recency, + popularity rank in [0, 1e-6)."""
        rows, items, values, fill = self.score_sparse(histories)
        scores = np.tile(fill, (histories.n_users, 1))
        scores[rows, items] = values
        return scores

    def save(self, model_dir: Path, extra: dict | None = None) -> Path:
        """Write model.json (plus `extra`) and vocab.parquet; the basket is products in at
        least `threshold` of the customer's orders."""
        with atomic_dir(model_dir) as staging:
            meta = {
                "kind": self.kind,
                "threshold": self.threshold,
                "decoding": self.decoding,
                **(extra or {}),
            }
            write_model_dir(staging, self.vocab, meta)
        return Path(model_dir)

    @classmethod
    def load(cls, model_dir: Path) -> PTopFreq:
        """Read a model written by `save`."""
        meta = ModelMeta.read(model_dir)
        return cls(
            Vocabulary.load(Path(model_dir) / "vocab.parquet"),
            threshold=meta.threshold,
            decoding=meta.decoding,
        )
