"""Online requests built from batch histories: what tests and benchmarks send to compare an
online answer with the batch answer for the same customer."""

from __future__ import annotations

import numpy as np

from basket.data.history import Histories


def history_request(histories: Histories, user: int, k: int = 10) -> dict:
    """The online request carrying user position `user`'s history and context, as batch reads it."""
    first, last = histories.order_offsets[user], histories.order_offsets[user + 1]
    orders = []
    for order in range(first, last):
        context = {
            "order_dow": int(histories.order_dow[order]),
            "order_hour_of_day": int(histories.order_hour[order]),
            "days_since_prior_order": _number(histories.days_since_prior[order]),
        }
        products = histories.product_ids[
            histories.line_offsets[order] : histories.line_offsets[order + 1]
        ]
        orders.append({"products": products.astype(int).tolist(), **context})
    following = {
        "order_dow": int(histories.next_dow[user]) if histories.next_dow[user] >= 0 else None,
        "order_hour_of_day": int(histories.next_hour[user])
        if histories.next_hour[user] >= 0
        else None,
        "days_since_prior_order": _number(histories.next_days_since_prior[user]),
    }
    return {
        "orders": orders,
        "k": k,
        "next_order": following,
        "user_id": int(histories.user_ids[user]),
    }


def _number(value) -> float | None:
    return None if np.isnan(value) else float(value)
