"""From a data folder to what every trainer needs: splits, vocabulary, the products table.

`prepare` builds it in memory; `Prepared.save` / `Prepared.load` carry it between
the stages of the nightly pipeline (plain arrays and parquet, no pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from basket.data.history import Splits, build_histories, load_splits, make_splits, save_splits
from basket.data.load import data_fingerprint, load_tables
from basket.data.quarantine import drop_quarantined, read_quarantine
from basket.data.vocab import VocabConfig, Vocabulary
from basket.io.atomic import atomic_dir


@dataclass(frozen=True)
class Prepared:
    """The one evaluation split (and the tuning split inside it), the vocabulary built from the
    evaluation inputs only, the products table and the data's fingerprint."""

    splits: Splits
    vocab: Vocabulary
    products: pd.DataFrame
    fingerprint: str
    data_dir: str = ""

    def save(self, folder: Path | str) -> Path:
        """Write splits.npz, vocab.parquet, products.parquet and prepared.json into `folder`."""
        with atomic_dir(folder) as staging:
            save_splits(self.splits, staging / "splits.npz")
            self.vocab.save(staging / "vocab.parquet")
            self.products.to_parquet(staging / "products.parquet", index=False)
            meta = {"fingerprint": self.fingerprint, "data_dir": self.data_dir}
            (staging / "prepared.json").write_text(json.dumps(meta, indent=1))
        return Path(folder)

    @classmethod
    def load(cls, folder: Path | str) -> Prepared:
        """What `save` wrote."""
        folder = Path(folder)
        meta = json.loads((folder / "prepared.json").read_text())
        return cls(
            splits=load_splits(folder / "splits.npz"),
            vocab=Vocabulary.load(folder / "vocab.parquet"),
            products=pd.read_parquet(folder / "products.parquet"),
            fingerprint=meta["fingerprint"],
            data_dir=meta["data_dir"],
        )


def prepare(
    data_dir: Path | str, vocab_config: VocabConfig, quarantine: Path | str | None = None
) -> Prepared:
    """Load `data_dir` (less the lines validation quarantined into `quarantine`), build
    histories and splits, and the vocabulary from the evaluation inputs."""
    tables = drop_quarantined(load_tables(data_dir), read_quarantine(quarantine))
    splits = make_splits(build_histories(tables))
    vocab = Vocabulary.build(splits.eval_inputs.product_ids, tables.products, vocab_config)
    return Prepared(splits, vocab, tables.products, data_fingerprint(data_dir), str(data_dir))
