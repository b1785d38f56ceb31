"""Per (user, product) purchase statistics from histories, as sparse arrays.

For every product a user bought (inside the vocabulary) it records how many of
their orders held it, and how many orders ago they last bought it. Sorted by
user with offsets, so a batch of users is a slice, never a dense users x
products matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from basket.data.history import Histories, index_ranges, offsets_from_counts
from basket.data.vocab import Vocabulary

OWN_FEATURES = 6  # columns of UserProductStats.features()
N_FEATURES = OWN_FEATURES + 3  # columns of gate_features(): what the repeat gate reads
# Per-order decays of the time-decayed counts (sum over purchases of decay ** orders ago).
DECAYS = (0.5, 0.8, 0.95)


@dataclass(frozen=True)
class UserProductStats:
    """Sparse (user, product) statistics; entries of user u are `offsets[u]:offsets[u + 1]`."""

    offsets: np.ndarray  # (U + 1,) int64
    items: np.ndarray  # (S,) int32 vocabulary index
    counts: np.ndarray  # (S,) int32 orders that held the product
    orders_since: np.ndarray  # (S,) int32 orders since the last purchase (0: the last order)
    days_since: np.ndarray  # (S,) float32 days from the last purchase to the order to predict
    mean_interval: np.ndarray  # (S,) float32 mean days between purchases (NaN if bought once)
    n_orders: np.ndarray  # (U,) int32 orders of each user
    orders_since_first: np.ndarray  # (S,) int32 orders since the first purchase
    decayed: np.ndarray  # (S, len(DECAYS)) float32 sum of decay ** orders ago over purchases

    def features(self) -> np.ndarray:
        """(S, 6) float32: log1p(count), share of orders, recency exp(-orders since / 3),
        in last order, log1p(days since), and days since / own mean interval (the
        repurchase cycle; 0 when bought once)."""
        share = self.counts / np.repeat(np.maximum(self.n_orders, 1), np.diff(self.offsets))
        cycle = np.nan_to_num(self.days_since / np.maximum(self.mean_interval, 1.0), nan=0.0)
        return np.stack(
            [
                np.log1p(self.counts),
                share,
                np.exp(-self.orders_since / 3.0),
                (self.orders_since == 0).astype(np.float64),
                np.log1p(self.days_since),
                np.minimum(cycle, 5.0),
            ],
            axis=1,
        ).astype(np.float32)

    def rows(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For `users` (positions): each entry's row in the batch and its position in these arrays."""
        users = np.asarray(users)
        entries = index_ranges(self.offsets[users], self.offsets[users + 1])
        batch_row = np.repeat(np.arange(len(users)), np.diff(self.offsets)[users])
        return batch_row, entries


def timeline(histories: Histories) -> tuple[np.ndarray, np.ndarray]:
    """(days from each user's first order to each order (O,), to the order to predict (U,)):
    its gap when known, else the user's mean gap."""
    gaps = np.nan_to_num(histories.days_since_prior.astype(np.float64), nan=0.0)
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(
        elapsed[histories.order_offsets[:-1]] if len(elapsed) else [], histories.orders_per_user()
    )
    mean_gap = np.divide(
        elapsed[histories.order_offsets[1:] - 1],
        np.maximum(histories.orders_per_user() - 1, 1),
    )
    next_gap = np.where(
        np.isnan(histories.next_days_since_prior), mean_gap, histories.next_days_since_prior
    )
    return elapsed, elapsed[histories.order_offsets[1:] - 1] + next_gap


def user_product_stats(histories: Histories, vocab: Vocabulary) -> UserProductStats:
    """Count, recency and repurchase interval of every in-vocabulary product each user bought."""
    items = vocab.index_of(histories.product_ids)
    order_of_line = histories.order_of_line()
    user_of_order = histories.user_of_order()
    user_of_line = user_of_order[order_of_line]
    elapsed, now = timeline(histories)
    # Orders ago: 0 for the user's last order.
    orders_ago = (histories.order_offsets[user_of_line + 1] - 1 - order_of_line).astype(np.int64)
    known = items >= 0
    key = user_of_line[known].astype(np.int64) * len(vocab) + items[known]
    unique_key, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(unique_key))
    orders_since = np.full(len(unique_key), np.iinfo(np.int64).max)
    np.minimum.at(orders_since, inverse, orders_ago[known])
    line_elapsed = elapsed[order_of_line][known]
    last_bought = np.full(len(unique_key), -np.inf)
    np.maximum.at(last_bought, inverse, line_elapsed)
    first_bought = np.full(len(unique_key), np.inf)
    np.minimum.at(first_bought, inverse, line_elapsed)
    orders_since_first = np.zeros(len(unique_key), dtype=np.int64)
    np.maximum.at(orders_since_first, inverse, orders_ago[known])
    # decay ** orders ago looked up in a table of powers (one pow per distinct age, not per line).
    ages = orders_ago[known]
    steps = np.arange(ages.max() + 1 if len(ages) else 0)
    decayed = np.stack(
        [
            np.bincount(inverse, weights=(decay**steps)[ages], minlength=len(unique_key))
            for decay in DECAYS
        ],
        axis=1,
    )
    user = unique_key // len(vocab)
    interval = np.where(
        counts > 1, (last_bought - first_bought) / np.maximum(counts - 1, 1), np.nan
    )
    return UserProductStats(
        offsets=offsets_from_counts(np.bincount(user, minlength=histories.n_users)),
        items=(unique_key % len(vocab)).astype(np.int32),
        counts=counts.astype(np.int32),
        orders_since=orders_since.astype(np.int32),
        days_since=np.maximum(now[user] - last_bought, 0).astype(np.float32),
        mean_interval=interval.astype(np.float32),
        n_orders=histories.orders_per_user().astype(np.int32),
        orders_since_first=orders_since_first.astype(np.int32),
        decayed=decayed.astype(np.float32).reshape(len(unique_key), len(DECAYS)),
    )


def gate_features(stats: UserProductStats, vocab: Vocabulary) -> np.ndarray:
    """(S, N_FEATURES) float32: `stats.features()` plus the product's overall popularity
    (log purchases in the vocabulary's data), the customer's reorder share and log orders."""
    owner = np.repeat(np.arange(len(stats.n_orders)), np.diff(stats.offsets))
    lines = np.bincount(owner, weights=stats.counts, minlength=len(stats.n_orders))
    repeats = np.bincount(owner, weights=stats.counts - 1, minlength=len(stats.n_orders))
    reorder_share = repeats / np.maximum(lines, 1)
    extra = np.stack(
        [
            np.log1p(vocab.counts[stats.items]),
            reorder_share[owner],
            np.log1p(stats.n_orders[owner]),
        ],
        axis=1,
    ).astype(np.float32)
    return np.concatenate([stats.features(), extra], axis=1)
