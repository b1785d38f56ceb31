"""Networks for tests and benchmarks: CNNGRU and AttentionGRU by name, and a network's
probabilities for every user at once."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from basket.config.run import PredictorConfig
from basket.models.encoding import Encoded
from basket.models.modules import NextBasketNet
from basket.models.neural_training import predict_batches


def CNNGRU(config: PredictorConfig, n_products: int, n_stat_features: int) -> NextBasketNet:
    """The CNN order encoder + GRU predictor."""
    return NextBasketNet(replace(config, encoder="cnn"), n_products, n_stat_features)


def AttentionGRU(config: PredictorConfig, n_products: int, n_stat_features: int) -> NextBasketNet:
    """The attention order encoder + GRU predictor."""
    return NextBasketNet(replace(config, encoder="attention"), n_products, n_stat_features)


def predict(net: NextBasketNet, encoded: Encoded, batch_size: int = 512) -> np.ndarray:
    """(U, V) probabilities of the output layer's products for every user of `encoded`."""
    out = np.empty((encoded.n_users, net.n_products), dtype=np.float32)
    for part in predict_batches(net, encoded, batch_size):
        out[part.users] = part.probabilities
    return out
