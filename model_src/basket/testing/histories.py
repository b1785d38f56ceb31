"""`Histories` for tests: hand-made ones (nested lists of baskets, 7 days apart), the customers
batch scoring scores, and equality of two."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from basket.data.history import Histories, has_test_order, offsets_from_counts


def histories_from(baskets_per_user: list[list[list[int]]], user_ids=None) -> Histories:
    """Histories from nested lists (users -> baskets -> product ids): every order on day 0 at
    10:00, 7 days after the one before, and the next order 7 days after the last."""
    orders = [basket for user in baskets_per_user for basket in user]
    products = np.array([p for basket in orders for p in basket], dtype=np.int32)
    n_orders = len(orders)
    return Histories(
        user_ids=np.array(user_ids or range(1, len(baskets_per_user) + 1), dtype=np.int32),
        order_offsets=offsets_from_counts(np.array([len(u) for u in baskets_per_user])),
        order_ids=np.arange(1, n_orders + 1, dtype=np.int32),
        order_dow=np.zeros(n_orders, np.int8),
        order_hour=np.full(n_orders, 10, np.int8),
        days_since_prior=np.full(n_orders, 7.0, np.float32),
        line_offsets=offsets_from_counts(np.array([len(b) for b in orders])),
        product_ids=products,
        next_dow=np.zeros(len(baskets_per_user), np.int8),
        next_hour=np.full(len(baskets_per_user), 10, np.int8),
        next_days_since_prior=np.full(len(baskets_per_user), 7.0, np.float32),
    )


def scoring_users(histories: Histories) -> np.ndarray:
    """(U,) the users batch scoring scores: those with a `test` order, or all when none has one
    (as `basket.data.blocks.scoring_user_ids` decides from the orders table)."""
    with_test = has_test_order(histories)
    return with_test if with_test.any() else np.ones(histories.n_users, dtype=bool)


def same_histories(one: Histories, other: Histories) -> bool:
    """Whether every array of the two is identical (NaN equal to NaN)."""
    return all(
        np.array_equal(
            getattr(one, f.name),
            getattr(other, f.name),
            equal_nan=f.name.startswith(("days", "next_days")),
        )
        for f in fields(one)
    )
