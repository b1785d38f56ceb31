"""Filling the history store: `basket store load` (a whole new snapshot from a validated data
folder) and `basket store append` (orders placed since, into the current snapshot).

The histories are built exactly as batch scoring builds them (`user_blocks` →
quarantined lines dropped → `build_histories`), one block of customers at a time, so a
server answering `{"user_id": u}` from the store scores the very history `basket score`
scores for u, and memory does not grow with the number of customers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from basket.config.serving import BatchConfig
from basket.data import schema as s
from basket.data.blocks import read_frame, user_blocks
from basket.data.customer_history import CustomerHistory, customer_at
from basket.data.history import build_histories
from basket.data.load import Tables, data_fingerprint
from basket.data.quarantine import drop_quarantined, read_quarantine
from basket.serving.store.base import WRITE_TIMEOUT_S, SnapshotInfo, StoreUnavailable
from basket.serving.store.codec import decode, encode, encode_histories
from basket.serving.store.connect import open_store

logger = logging.getLogger(__name__)
# Customers whose histories are built and written at once (as batch scoring's blocks).
BLOCK_USERS = BatchConfig.block_users
# Customers per conditional write of an append (Redis's Lua `unpack` takes a few thousand).
APPEND_CHUNK = 1000


@dataclass(frozen=True)
class AppendResult:
    """What `append_orders` changed: in which snapshot, for how many customers and orders."""

    snapshot: str
    customers: int
    new_customers: int
    orders_added: int
    orders_already_stored: int


def load_snapshot(
    data_dir: Path | str, store_url: str, quarantine: Path | str | None = None
) -> SnapshotInfo:
    """Write every customer's history of `data_dir` (lines in `quarantine` left out) to the
    store at `store_url` as a new snapshot, then make it current. Returns its info."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    orders = read_frame(data_dir, s.ORDERS)
    user_ids = np.unique(orders[s.USER_ID].to_numpy())
    quarantined = read_quarantine(quarantine)
    created = datetime.now(UTC)
    info = SnapshotInfo(
        version=f"{created:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        created=created.isoformat(timespec="seconds"),
        users=0,
        source=str(data_dir.resolve()),
        fingerprint=data_fingerprint(data_dir),
    )
    written = []

    def batches() -> Iterator[tuple[np.ndarray, list[bytes]]]:
        for tables in user_blocks(data_dir, user_ids, BLOCK_USERS, orders):
            histories = build_histories(drop_quarantined(tables, quarantined))
            written.append(histories.n_users)
            logger.info(
                "store load: %d of %d customers (%.0f s)",
                sum(written), len(user_ids), time.perf_counter() - started,
            )  # fmt: skip
            yield histories.user_ids, encode_histories(histories)

    store = open_store(store_url, WRITE_TIMEOUT_S, writable=True)
    try:
        store.replace(batches(), info)
        return store.info()
    finally:
        store.close()


def append_orders(data_dir: Path | str, store_url: str) -> AppendResult:
    """Append the orders of `data_dir` (Instacart layout: orders and their lines, placed since
    the snapshot) to their customers' histories in the current snapshot. Orders whose id a
    customer's history already holds are skipped, so appending twice changes nothing."""
    new = build_histories(_append_tables(Path(data_dir)))
    store = open_store(store_url, WRITE_TIMEOUT_S, writable=True)
    try:
        for _attempt in range(3):
            result = _append(store, new)
            if result is not None:
                return result
        raise StoreUnavailable(f"history store {store.url}: snapshots kept changing; append again")
    finally:
        store.close()


def _append(store, new) -> AppendResult | None:
    """One try at `append_orders` on the current snapshot; None if a load replaced it meanwhile."""
    read = store.read(new.user_ids.tolist())
    merged, added, known = [], 0, 0
    for user in range(new.n_users):
        record = read.records.get(int(new.user_ids[user]))
        stored = decode(record) if record is not None else CustomerHistory.empty()
        arriving = customer_at(new, user)
        result = stored.then(arriving)
        added += result.n_orders - stored.n_orders
        known += arriving.n_orders - (result.n_orders - stored.n_orders)
        merged.append(encode(result))
    for start in range(0, new.n_users, APPEND_CHUNK):
        chunk = slice(start, start + APPEND_CHUNK)
        if not store.write_current(read.snapshot, new.user_ids[chunk].tolist(), merged[chunk]):
            return None
    return AppendResult(
        snapshot=read.snapshot,
        customers=new.n_users,
        new_customers=new.n_users - len(read.records),
        orders_added=added,
        orders_already_stored=known,
    )


def _append_tables(data_dir: Path) -> Tables:
    """The orders and lines of an append folder (no catalogue needed)."""
    return Tables(
        orders=read_frame(data_dir, s.ORDERS),
        prior_lines=read_frame(data_dir, s.PRIOR_LINES),
        products=pd.DataFrame(),
        train_lines=read_frame(data_dir, s.TRAIN_LINES),
    )
