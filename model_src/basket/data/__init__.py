"""Instacart-layout data: schema, loading, synthetic generation, vocabulary, histories."""

from basket.data.history import (
    Histories,
    Splits,
    Targets,
    build_histories,
    holdout_last,
    make_splits,
)
from basket.data.load import DataFileError, Tables, data_fingerprint, load_tables
from basket.data.vocab import VocabConfig, Vocabulary

__all__ = [
    "DataFileError",
    "Histories",
    "Splits",
    "Tables",
    "Targets",
    "VocabConfig",
    "Vocabulary",
    "build_histories",
    "data_fingerprint",
    "holdout_last",
    "load_tables",
    "make_splits",
]
