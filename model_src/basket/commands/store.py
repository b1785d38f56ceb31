"""`basket store load|append|info`: fill the history store servers answer `{"user_id": …}` from."""

from __future__ import annotations

import argparse
import json
import sys
import time

from basket.commands.exit_codes import ExitCode
from basket.serving.store.base import StoreUnavailable
from basket.serving.store.codec import decode
from basket.serving.store.connect import open_store
from basket.serving.store.fill import append_orders, load_snapshot


def load(args: argparse.Namespace) -> int:
    """Every customer's history of a validated folder, as a new snapshot."""
    started = time.perf_counter()
    try:
        info = load_snapshot(args.data_dir, args.store, args.quarantine)
    except StoreUnavailable as error:
        return _unavailable(error)
    print(
        f"loaded {info.users:,} customers from {info.source} into {open_store(args.store).url} "
        f"as snapshot {info.version} in {time.perf_counter() - started:.1f}s"
    )
    return 0


def append(args: argparse.Namespace) -> int:
    """Orders placed since the snapshot, into the current snapshot."""
    try:
        result = append_orders(args.data_dir, args.store)
    except StoreUnavailable as error:
        return _unavailable(error)
    print(
        f"appended {result.orders_added:,} orders of {result.customers:,} customers "
        f"({result.new_customers:,} new) to snapshot {result.snapshot}; "
        f"{result.orders_already_stored:,} orders were stored already"
    )
    return 0


def info(args: argparse.Namespace) -> int:
    """The current snapshot as JSON (and one customer's stored orders with --user)."""
    store = open_store(args.store)
    try:
        current = store.info()
        if current is None:
            print(f"history store {store.url} holds no snapshot yet")
            return 1
        shown = {"store": store.url, **current.as_dict()}
        if args.user is not None:
            shown["user"] = _customer(store, args.user)
    except StoreUnavailable as error:
        return _unavailable(error)
    print(json.dumps(shown, indent=2))
    return 0


def _customer(store, user_id: int) -> dict | None:
    record = store.read([user_id]).records.get(user_id)
    if record is None:
        return None
    history = decode(record)
    return {
        "user_id": user_id,
        "orders": history.n_orders,
        "lines": len(history.product_ids),
        "order_ids": history.order_ids.tolist(),
        # Unknown context (-1, NaN) shows as null.
        "next_order": {
            key: None if value < 0 or value != value else value
            for key, value in zip(
                ("order_dow", "order_hour_of_day", "days_since_prior_order"),
                history.next_context, strict=True,
            )
        },
    }  # fmt: skip


def _unavailable(error: StoreUnavailable) -> int:
    print(f"basket store: error: {error}", file=sys.stderr)
    return ExitCode.UNAVAILABLE
