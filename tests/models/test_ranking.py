"""Top-k: the same products whatever numpy does with ties (online in Triton's numpy 1.26
environment must equal batch in numpy 2)."""

from __future__ import annotations

import numpy as np
import pytest

from basket.models.ranking import sparse_top_k, top_k


def reference(scores: np.ndarray, k: int) -> np.ndarray:
    """Best first, ties to the lower index, by a full sort of every row."""
    columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.lexsort((columns, -scores), axis=1)[:, :k]


@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_ties_at_the_kth_place_go_to_the_lower_index(k):
    rng = np.random.default_rng(0)
    # Few distinct values: most rows tie across the k-th place, as P-TopFreq's counts do.
    scores = (rng.integers(0, 4, size=(500, 120)) / 32).astype(np.float32)
    index, values = top_k(scores, k)
    np.testing.assert_array_equal(index, reference(scores, k))
    np.testing.assert_array_equal(values, np.take_along_axis(scores, index, axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_every_score_type_and_layout_gives_the_reference(dtype):
    """Float scores go through torch's selection, others through numpy's; a transposed
    (non-contiguous) matrix and one holding NaN (never a best score) too."""
    rng = np.random.default_rng(2)
    scores = (rng.random((60, 300)) * 1000).astype(dtype)
    for matrix in (scores, np.asfortranarray(scores), scores[:, ::-1]):
        np.testing.assert_array_equal(top_k(matrix, 10)[0], reference(matrix, 10))
    if dtype != np.int64:
        scores[:, :50] = np.nan
        np.testing.assert_array_equal(top_k(scores, 10)[0], reference(scores, 10))


def test_rows_without_ties_and_small_catalogues():
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]], np.float32)
    np.testing.assert_array_equal(top_k(scores, 2)[0], [[1, 2], [0, 1]])
    assert top_k(scores, 10)[0].shape == (2, 3)


@pytest.mark.parametrize("n_cols", [80, 4000])  # entries fill a quarter (made dense), 1 %
@pytest.mark.parametrize("k", [1, 5, 20, 60])
def test_sparse_top_k_equals_top_k_of_the_matrix(k, n_cols):
    """Rows with many candidates, with few (zeros fill them, lowest index first), with none,
    and ties among the values: the same indices and values as the dense matrix's top_k,
    whether the entries are few (sorted) or many (made dense)."""
    rng = np.random.default_rng(1)
    n_rows = 300
    per_row = rng.integers(0, 40, n_rows)
    per_row[:5] = 0
    rows = np.repeat(np.arange(n_rows), per_row)
    cols = np.concatenate([rng.choice(n_cols, size=n, replace=False) for n in per_row])
    values = (rng.integers(1, 5, len(rows)) / 8).astype(np.float32)
    dense = np.zeros((n_rows, n_cols), np.float32)
    dense[rows, cols] = values
    shuffle = rng.permutation(len(rows))
    index, got = sparse_top_k(rows[shuffle], cols[shuffle], values[shuffle], n_rows, n_cols, k)
    expected_index, expected_values = top_k(dense, k)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_array_equal(got, expected_values)
