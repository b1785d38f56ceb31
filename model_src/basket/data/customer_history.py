"""One customer's order history as flat arrays: what an online request carries, what the
history store keeps per customer, and how several of them become one `Histories`.

    CustomerHistory  orders oldest first (products flat, with the products per order), each
                     order's context, and the context of the order to predict
    stored.then(request)            the request's orders appended to the stored ones
    customers_to_histories(ids, cs) one `Histories`, a user per customer, for `recommend`

Unknown context is -1 (day, hour) or NaN (days since prior), as in `Histories`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from basket.data.history import Histories, offsets_from_counts

# Instacart's median days between orders; used where a request gives no gap.
DEFAULT_GAP_DAYS = 7.0
UNKNOWN_NEXT = (-1, -1, math.nan)


@dataclass(frozen=True)
class CustomerHistory:
    """One customer's orders, oldest first. `order_ids` are the data's ids (-1 for orders that
    came in a request); `next_context` is (dow, hour, days since prior) of the order to predict."""

    order_lengths: np.ndarray  # (n,) int32, products in each order
    product_ids: np.ndarray  # (L,) int32, every order's products, oldest order first
    order_dow: np.ndarray  # (n,) int8, -1 unknown
    order_hour: np.ndarray  # (n,) int8, -1 unknown
    days_since_prior: np.ndarray  # (n,) float32, NaN on a first order
    order_ids: np.ndarray  # (n,) int32
    next_context: tuple[int, int, float] = UNKNOWN_NEXT

    @property
    def n_orders(self) -> int:
        return len(self.order_lengths)

    @classmethod
    def empty(cls) -> CustomerHistory:
        """A customer with no order."""
        return cls(*(np.zeros(0, dtype) for dtype in _DTYPES))

    def then(self, later: CustomerHistory) -> CustomerHistory:
        """These orders followed by `later`'s, minus those whose order id is already here (so
        appending the same orders twice changes nothing). The next order's context is
        `later`'s where it knows it: once new orders exist, an older forecast context is stale."""
        fresh = (later.order_ids < 0) | ~np.isin(later.order_ids, self.order_ids)
        if not fresh.all():
            later = later.select_orders(fresh)
        if later.n_orders == 0:
            return self
        gaps = later.days_since_prior.copy()
        # The first of the later orders follows these: a missing gap is a gap, not a first order.
        if self.n_orders and np.isnan(gaps[0]):
            gaps[0] = DEFAULT_GAP_DAYS
        return CustomerHistory(
            order_lengths=np.concatenate([self.order_lengths, later.order_lengths]),
            product_ids=np.concatenate([self.product_ids, later.product_ids]),
            order_dow=np.concatenate([self.order_dow, later.order_dow]),
            order_hour=np.concatenate([self.order_hour, later.order_hour]),
            days_since_prior=np.concatenate([self.days_since_prior, gaps]),
            order_ids=np.concatenate([self.order_ids, later.order_ids]),
            next_context=later.next_context,
        )

    def with_next(self, context: tuple[int, int, float]) -> CustomerHistory:
        """This history with each known field of `context` (not -1 / NaN) as the next order's."""
        known = (context[0] >= 0, context[1] >= 0, not math.isnan(context[2]))
        merged = tuple(
            new if ok else old
            for new, old, ok in zip(context, self.next_context, known, strict=True)
        )
        return CustomerHistory(
            self.order_lengths, self.product_ids, self.order_dow, self.order_hour,
            self.days_since_prior, self.order_ids, merged,
        )  # fmt: skip

    def select_orders(self, keep: np.ndarray) -> CustomerHistory:
        """The orders where `keep` (bool, one per order) holds."""
        lines = np.repeat(keep, self.order_lengths)
        return CustomerHistory(
            self.order_lengths[keep], self.product_ids[lines], self.order_dow[keep],
            self.order_hour[keep], self.days_since_prior[keep], self.order_ids[keep],
            self.next_context,
        )  # fmt: skip


_DTYPES = (np.int32, np.int32, np.int8, np.int8, np.float32, np.int32)


def customer_at(histories: Histories, user: int) -> CustomerHistory:
    """User position `user`'s history in `histories`, with its next-order context."""
    first, last = histories.order_offsets[user], histories.order_offsets[user + 1]
    return CustomerHistory(
        order_lengths=np.diff(histories.line_offsets[first : last + 1]).astype(np.int32),
        product_ids=histories.product_ids[
            histories.line_offsets[first] : histories.line_offsets[last]
        ],
        order_dow=histories.order_dow[first:last],
        order_hour=histories.order_hour[first:last],
        days_since_prior=histories.days_since_prior[first:last],
        order_ids=histories.order_ids[first:last],
        next_context=(
            int(histories.next_dow[user]),
            int(histories.next_hour[user]),
            float(histories.next_days_since_prior[user]),
        ),
    )


def customers_to_histories(user_ids: list[int], customers: list[CustomerHistory]) -> Histories:
    """One `Histories` with a user per customer, in order (the same arrays batch scoring builds
    from the data for these customers)."""
    return Histories(
        user_ids=np.array(user_ids, dtype=np.int32),
        order_offsets=offsets_from_counts(
            np.array([c.n_orders for c in customers], dtype=np.int64)
        ),
        order_ids=_concat([c.order_ids for c in customers], np.int32),
        order_dow=_concat([c.order_dow for c in customers], np.int8),
        order_hour=_concat([c.order_hour for c in customers], np.int8),
        days_since_prior=_concat([c.days_since_prior for c in customers], np.float32),
        line_offsets=offsets_from_counts(_concat([c.order_lengths for c in customers], np.int64)),
        product_ids=_concat([c.product_ids for c in customers], np.int32),
        next_dow=np.array([c.next_context[0] for c in customers], np.int8),
        next_hour=np.array([c.next_context[1] for c in customers], np.int8),
        next_days_since_prior=np.array([c.next_context[2] for c in customers], np.float32),
    )


def _concat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
