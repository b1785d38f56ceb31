"""The product vocabulary: which products a model scores, and their dense indices.

Index order is by purchase count (most bought first, ties by product id), so the
first indices are also the popularity fallback. Products outside the vocabulary
map to -1: models cannot recommend them, but they still count in the truth.

By default the vocabulary is the whole catalogue a run's inputs bought: the
sparse models (P-TopFreq, TIFU-KNN, XGBoost) score every product a customer
ever bought. The neural nets' output layer and the EV file cover a prefix of it,
`neural_vocabulary`: the most bought products holding `neural_coverage` of the
lines, at most `neural_max` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from basket.config.run import VocabConfig
from basket.data import schema as s


@dataclass(frozen=True)
class Vocabulary:
    """Products a model scores: index i is `product_ids[i]`, named `product_names[i]`."""

    product_ids: np.ndarray  # (V,) int32
    product_names: np.ndarray  # (V,) object
    counts: np.ndarray  # (V,) int64 purchases in the data it was built from

    def __len__(self) -> int:
        return len(self.product_ids)

    @cached_property
    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        # Sorted once per vocabulary: online scoring looks up a few ids many times.
        order = np.argsort(self.product_ids, kind="stable")
        return order, self.product_ids[order]

    @cached_property
    def _table(self) -> np.ndarray | None:
        """Index by product id, where ids are small enough for a table (Instacart's run to
        49,688): one gather per lookup instead of a binary search; None otherwise."""
        if not len(self.product_ids):
            return None
        top = int(self.product_ids.max())
        if self.product_ids.min() < 0 or top >= max(4 * len(self.product_ids), 1 << 20):
            return None
        table = np.full(top + 1, -1, dtype=np.int64)
        # Reversed: a repeated id keeps its first index, as the binary search finds it.
        table[self.product_ids[::-1]] = np.arange(len(self.product_ids))[::-1]
        return table

    def head(self, n: int) -> Vocabulary:
        """The `n` most bought products: a prefix, so its indices are this vocabulary's."""
        return Vocabulary(self.product_ids[:n], self.product_names[:n], self.counts[:n])

    def index_of(self, product_ids: np.ndarray) -> np.ndarray:
        """Vocabulary index of each product id, -1 where the product is not in the vocabulary."""
        product_ids = np.asarray(product_ids)
        table = self._table
        if table is not None and np.issubdtype(product_ids.dtype, np.integer):
            inside = (product_ids >= 0) & (product_ids < len(table))
            return np.where(inside, table[np.where(inside, product_ids, 0)], -1)
        order, sorted_ids = self._sorted
        pos = np.searchsorted(sorted_ids, product_ids)
        pos = np.minimum(pos, len(sorted_ids) - 1)
        found = (
            sorted_ids[pos] == product_ids if len(sorted_ids) else np.zeros(len(product_ids), bool)
        )
        return np.where(found, order[pos], -1)

    @classmethod
    def build(
        cls, product_ids: np.ndarray, products: pd.DataFrame, config: VocabConfig
    ) -> Vocabulary:
        """Vocabulary from purchased `product_ids` (one per order line) and the products table."""
        ids, counts = np.unique(np.asarray(product_ids), return_counts=True)
        keep = counts >= config.min_count
        ids, counts = ids[keep], counts[keep]
        order = np.lexsort((ids, -counts))[: config.top_n]
        ids, counts = ids[order].astype(np.int32), counts[order].astype(np.int64)
        names = (
            products.set_index(s.PRODUCT_ID)[s.PRODUCT_NAME]
            .reindex(ids)
            .fillna("")
            .to_numpy(dtype=object)
        )
        return cls(ids, names, counts)

    def save(self, path: Path | str) -> Path:
        """Write `vocab.parquet` (index, product_id, product_name, count)."""
        frame = pd.DataFrame(
            {
                "index": np.arange(len(self), dtype=np.int32),
                s.PRODUCT_ID: self.product_ids,
                s.PRODUCT_NAME: self.product_names.astype(str),
                "count": self.counts,
            }
        )
        frame.to_parquet(path, index=False)
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> Vocabulary:
        """Read a vocabulary written by `save`."""
        frame = pd.read_parquet(path).sort_values("index")
        return cls(
            frame[s.PRODUCT_ID].to_numpy(np.int32),
            frame[s.PRODUCT_NAME].to_numpy(dtype=object),
            frame["count"].to_numpy(np.int64),
        )


def neural_vocabulary(vocab: Vocabulary, config: VocabConfig) -> Vocabulary:
    """The prefix of `vocab` the neural nets and the EV file cover: the fewest most-bought
    products holding `config.neural_coverage` of `vocab`'s purchases, at most `neural_max`."""
    share = np.cumsum(vocab.counts) / max(int(vocab.counts.sum()), 1)
    needed = int(np.searchsorted(share, config.neural_coverage - 1e-12)) + 1
    return vocab.head(max(1, min(needed, config.neural_max, len(vocab))))


def line_coverage(vocab: Vocabulary, product_ids: np.ndarray) -> float:
    """Share of order lines (`product_ids`, one per line) whose product `vocab` holds."""
    product_ids = np.asarray(product_ids)
    return float((vocab.index_of(product_ids) >= 0).mean()) if len(product_ids) else 1.0
