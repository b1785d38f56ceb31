"""Histories -> the padded tensors the neural predictors read, built once, sliced per batch.

`encode` keeps each user's last `n_orders` orders (oldest first, padded at the
end) and each order's first `max_products` products of the network's output
layer, the vocabulary's first `head` products (padded with index `head`), plus
the sparse per-(user, product) features of the repeat gate: for the head's
products (`stat_*`) and for the products bought beyond it (`tail_*`), which only
the gate scores. Vectorised: offsets and scatters, no loop over users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from basket.data.history import Histories, Targets, index_ranges, offsets_from_counts
from basket.data.user_products import gate_features, user_product_stats
from basket.data.vocab import Vocabulary
from basket.models.modules import CONTEXT_FEATURES, Batch


def order_context(dow: np.ndarray, hour: np.ndarray, days_since: np.ndarray) -> np.ndarray:
    """(n, 6) float32: sin/cos of day of week and hour, days since prior / 30, first-order flag."""
    dow_angle = 2 * np.pi * np.asarray(dow, dtype=np.float64) / 7
    hour_angle = 2 * np.pi * np.asarray(hour, dtype=np.float64) / 24
    days = np.asarray(days_since, dtype=np.float64)
    return np.stack(
        [
            np.sin(dow_angle),
            np.cos(dow_angle),
            np.sin(hour_angle),
            np.cos(hour_angle),
            np.nan_to_num(days, nan=0.0) / 30.0,
            np.isnan(days).astype(np.float64),
        ],
        axis=1,
    ).astype(np.float32)


@dataclass
class Encoded:
    """Tensors for U users; `batch(users)` slices them into a `Batch`."""

    orders: torch.Tensor  # (U, N, M) int32, padding = V
    order_context: torch.Tensor  # (U, N, C)
    lengths: torch.Tensor  # (U,)
    next_context: torch.Tensor  # (U, C)
    stat_offsets: np.ndarray  # (U + 1,)
    stat_items: torch.Tensor  # (S,)
    stat_features: torch.Tensor  # (S, F)
    pad: int = 0  # the padding index (the head's size)
    target_offsets: np.ndarray | None = None  # (U + 1,)
    target_items: torch.Tensor | None = None  # (T,) vocabulary indices of the target basket
    # Products bought beyond the head (vocabulary index >= pad): the gate's features only.
    tail_offsets: np.ndarray | None = None  # (U + 1,)
    tail_items: torch.Tensor | None = None  # (S_t,) vocabulary index
    tail_features: torch.Tensor | None = None  # (S_t, F)

    @property
    def n_users(self) -> int:
        return self.orders.shape[0]

    def longest_order(self) -> np.ndarray:
        """(U,) products in each user's longest encoded order (for length bucketing)."""
        return (self.orders != self.pad).sum(dim=-1).amax(dim=-1).numpy()

    def batch(self, users: np.ndarray) -> Batch:
        """The model inputs of `users` (positions)."""
        entries = index_ranges(self.stat_offsets[users], self.stat_offsets[users + 1])
        rows = np.repeat(np.arange(len(users)), np.diff(self.stat_offsets)[users])
        index = torch.from_numpy(np.asarray(users))
        orders = self.orders[index]
        # Padding sits at the end of each order: drop the columns no order of this batch uses.
        longest = int((orders != self.pad).sum(dim=-1).max()) if orders.numel() else 0
        tail = {}
        if self.tail_offsets is not None:
            tail_entries = torch.from_numpy(
                index_ranges(self.tail_offsets[users], self.tail_offsets[users + 1])
            )
            tail = {
                "tail_rows": torch.from_numpy(
                    np.repeat(np.arange(len(users)), np.diff(self.tail_offsets)[users])
                ),
                "tail_items": self.tail_items[tail_entries].long(),
                "tail_features": self.tail_features[tail_entries],
            }
        return Batch(
            orders=orders[:, :, : max(longest, 1)].long(),
            order_context=self.order_context[index],
            lengths=self.lengths[index],
            next_context=self.next_context[index],
            stat_rows=torch.from_numpy(rows),
            stat_items=self.stat_items[torch.from_numpy(entries)].long(),
            stat_features=self.stat_features[torch.from_numpy(entries)],
            **tail,
        )

    def targets(self, users: np.ndarray, n_products: int) -> torch.Tensor:
        """(B, V) float 0/1 matrix of the target baskets of `users`."""
        entries = index_ranges(self.target_offsets[users], self.target_offsets[users + 1])
        rows = np.repeat(np.arange(len(users)), np.diff(self.target_offsets)[users])
        dense = torch.zeros(len(users), n_products)
        dense[torch.from_numpy(rows), self.target_items[torch.from_numpy(entries)].long()] = 1.0
        return dense


def encode(
    histories: Histories,
    vocab: Vocabulary,
    n_orders: int,
    max_products: int,
    targets: Targets | None = None,
    head: int | None = None,
) -> Encoded:
    """Padded tensors of the last `n_orders` orders of every user (and their targets, if given),
    for a network whose output layer is `vocab`'s first `head` products (all when None); the
    gate's features of products bought beyond them go to `tail_*`."""
    n_users = histories.n_users
    head = len(vocab) if head is None else head
    pad = head
    ends = histories.order_offsets[1:]
    starts = np.maximum(histories.order_offsets[:-1], ends - n_orders)
    lengths = ends - starts
    picked = index_ranges(starts, ends)  # order positions, user by user, oldest first
    picked_user = np.repeat(np.arange(n_users), lengths)
    picked_slot = np.arange(len(picked)) - np.repeat(np.cumsum(lengths) - lengths, lengths)

    sizes = histories.basket_sizes()[picked]
    lines = index_ranges(histories.line_offsets[picked], histories.line_offsets[picked + 1])
    line_order = np.repeat(np.arange(len(picked)), sizes)
    items = vocab.index_of(histories.product_ids[lines])
    known = (items >= 0) & (items < head)
    line_order, items = line_order[known], items[known]
    first_of_order = np.searchsorted(line_order, line_order, side="left")
    rank = np.arange(len(line_order)) - first_of_order
    keep = rank < max_products
    orders = np.full((n_users, n_orders, max_products), pad, dtype=np.int32)
    orders[picked_user[line_order[keep]], picked_slot[line_order[keep]], rank[keep]] = items[keep]

    context = np.zeros((n_users, n_orders, CONTEXT_FEATURES), dtype=np.float32)
    context[picked_user, picked_slot] = order_context(
        histories.order_dow[picked],
        histories.order_hour[picked],
        histories.days_since_prior[picked],
    )
    stats = user_product_stats(histories, vocab)
    features = gate_features(stats, vocab)
    owner = np.repeat(np.arange(n_users), np.diff(stats.offsets))
    in_head = stats.items < head
    encoded = Encoded(
        orders=torch.from_numpy(orders),
        order_context=torch.from_numpy(context),
        lengths=torch.from_numpy(np.maximum(lengths, 1).astype(np.int64)),
        next_context=torch.from_numpy(
            order_context(histories.next_dow, histories.next_hour, histories.next_days_since_prior)
        ),
        stat_offsets=offsets_from_counts(np.bincount(owner[in_head], minlength=n_users)),
        stat_items=torch.from_numpy(stats.items[in_head]),
        stat_features=torch.from_numpy(features[in_head]),
        pad=pad,
    )
    if head < len(vocab):
        encoded.tail_offsets = offsets_from_counts(np.bincount(owner[~in_head], minlength=n_users))
        encoded.tail_items = torch.from_numpy(stats.items[~in_head])
        encoded.tail_features = torch.from_numpy(features[~in_head])
    if targets is not None:
        encoded.target_offsets, target_items = targets.in_vocabulary(vocab.head(head))
        encoded.target_items = torch.from_numpy(target_items.astype(np.int32))
    return encoded


def concat(parts: list[Encoded]) -> Encoded:
    """One `Encoded` holding the users of all `parts` (e.g. several cut points per user)."""

    def offsets(name):
        arrays = [getattr(p, name) for p in parts]
        shifts = np.cumsum([0] + [a[-1] for a in arrays[:-1]])
        return np.concatenate([[0]] + [a[1:] + s for a, s in zip(arrays, shifts, strict=True)])

    with_targets = all(p.target_offsets is not None for p in parts)
    return Encoded(
        orders=torch.cat([p.orders for p in parts]),
        order_context=torch.cat([p.order_context for p in parts]),
        lengths=torch.cat([p.lengths for p in parts]),
        next_context=torch.cat([p.next_context for p in parts]),
        stat_offsets=offsets("stat_offsets"),
        stat_items=torch.cat([p.stat_items for p in parts]),
        stat_features=torch.cat([p.stat_features for p in parts]),
        pad=parts[0].pad,
        target_offsets=offsets("target_offsets") if with_targets else None,
        target_items=torch.cat([p.target_items for p in parts]) if with_targets else None,
    )
