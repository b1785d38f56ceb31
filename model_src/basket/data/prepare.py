"""From a data folder to what every trainer needs: tables, histories, splits, vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from basket.data.history import Histories, Splits, build_histories, make_splits
from basket.data.load import Tables, data_fingerprint, load_tables
from basket.data.vocab import VocabConfig, Vocabulary


@dataclass(frozen=True)
class Prepared:
    """Loaded data with the one evaluation split; the vocabulary sees only evaluation inputs."""

    tables: Tables
    histories: Histories
    splits: Splits
    vocab: Vocabulary
    fingerprint: str


def prepare(data_dir: Path | str, vocab_config: VocabConfig) -> Prepared:
    """Load `data_dir`, build histories and splits, and the vocabulary from the evaluation inputs."""
    tables = load_tables(data_dir)
    histories = build_histories(tables)
    splits = make_splits(histories)
    vocab = Vocabulary.build(splits.eval_inputs.product_ids, tables.products, vocab_config)
    return Prepared(tables, histories, splits, vocab, data_fingerprint(data_dir))
