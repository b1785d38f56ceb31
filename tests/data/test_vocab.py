"""The product vocabulary: size limits, index lookup, out-of-vocabulary handling, round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from basket.data import VocabConfig, Vocabulary
from basket.data.vocab import line_coverage, neural_vocabulary

PRODUCTS = pd.DataFrame(
    {"product_id": [1, 2, 3, 4], "product_name": ["Banana", "Milk", "Eggs", "Tea"]}
)
BOUGHT = np.array([2, 2, 2, 1, 1, 3, 4, 4])


def test_vocabulary_orders_products_by_purchase_count():
    vocab = Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig(top_n=None))
    assert vocab.product_ids.tolist() == [2, 1, 4, 3]
    assert vocab.product_names.tolist() == ["Milk", "Banana", "Tea", "Eggs"]


def test_top_n_and_min_count_limit_the_vocabulary():
    assert len(Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig(top_n=2))) == 2
    assert Vocabulary.build(
        BOUGHT, PRODUCTS, VocabConfig(top_n=None, min_count=2)
    ).product_ids.tolist() == [
        2,
        1,
        4,
    ]


def test_products_outside_the_vocabulary_map_to_minus_one():
    vocab = Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig(top_n=2))
    assert vocab.index_of(np.array([1, 3, 2, 99])).tolist() == [1, -1, 0, -1]


def test_vocabulary_round_trips_through_parquet(tmp_path):
    vocab = Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig(top_n=None))
    loaded = Vocabulary.load(vocab.save(tmp_path / "vocab.parquet"))
    assert loaded.product_ids.tolist() == vocab.product_ids.tolist()
    assert loaded.product_names.tolist() == vocab.product_names.tolist()
    assert pd.read_parquet(tmp_path / "vocab.parquet").columns[:3].tolist() == [
        "index",
        "product_id",
        "product_name",
    ]


def test_the_default_vocabulary_is_every_product_bought():
    assert len(Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig())) == 4


def test_the_neural_vocabulary_is_the_fewest_most_bought_products_holding_the_coverage():
    vocab = Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig())  # counts 3, 2, 2, 1 of 8 lines
    assert len(neural_vocabulary(vocab, VocabConfig(neural_coverage=0.6))) == 2  # 5/8 >= 0.6
    assert len(neural_vocabulary(vocab, VocabConfig(neural_coverage=0.625))) == 2  # exactly 5/8
    assert len(neural_vocabulary(vocab, VocabConfig(neural_coverage=0.9))) == 4
    assert len(neural_vocabulary(vocab, VocabConfig(neural_coverage=0.9, neural_max=3))) == 3
    head = neural_vocabulary(vocab, VocabConfig(neural_coverage=0.6))
    assert head.product_ids.tolist() == vocab.product_ids[:2].tolist()  # a prefix: same indices


def test_line_coverage_counts_the_lines_a_vocabulary_holds():
    vocab = Vocabulary.build(BOUGHT, PRODUCTS, VocabConfig(top_n=2))  # products 2 and 1
    assert line_coverage(vocab, BOUGHT) == 5 / 8


def test_a_coverage_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="neural_coverage"):
        VocabConfig(neural_coverage=1.5)


@pytest.mark.parametrize("largest_id", [9_000, 2**31 - 2])  # a lookup table; a binary search
def test_index_of_finds_every_id_whatever_its_size(largest_id):
    ids = np.array([7, 3, largest_id, 12, 5], dtype=np.int64)
    vocab = Vocabulary(ids, np.array(list("abcde"), dtype=object), np.array([5, 4, 3, 2, 1]))
    asked = np.array([3, largest_id, 4, -1, 0, 2**31 - 1, 12, 7, 7, 9_001])
    expected = [1, 2, -1, -1, -1, -1, 3, 0, 0, -1]
    assert vocab.index_of(asked).tolist() == expected
    assert vocab.index_of(asked.astype(np.int32)).tolist() == expected
    assert vocab.index_of(np.zeros(0, np.int32)).tolist() == []
    assert vocab.index_of(np.array([3.0, 4.0])).tolist() == [1, -1]  # not an index: searched
