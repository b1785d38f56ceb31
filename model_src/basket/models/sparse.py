"""Small sparse-matrix helpers shared by the embedding and neighbour models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def normalise_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Each row scaled to unit L2 norm (all-zero rows stay zero)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix)
