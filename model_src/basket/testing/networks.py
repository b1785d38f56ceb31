"""A network's probabilities for every user at once: for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from basket.models.encoding import Encoded
from basket.models.modules import NextBasketNet
from basket.models.neural_training import predict_batches


def predict(net: NextBasketNet, encoded: Encoded, batch_size: int = 512) -> np.ndarray:
    """(U, V) probabilities of the output layer's products for every user of `encoded`."""
    out = np.empty((encoded.n_users, net.n_products), dtype=np.float32)
    for part in predict_batches(net, encoded, batch_size):
        out[part.users] = part.probabilities
    return out
