"""What every history store does, whichever backend keeps the bytes.

A store holds snapshots: each is every customer's record (`basket.serving.store.codec`) from one
`basket store load`, under a version, and beside it the nightly answers batch scoring stored
for those customers (`basket.serving.store.nightly`). One pointer names the current snapshot; a load
writes a whole new snapshot beside it and then moves the pointer in one atomic step, so a
reader sees one snapshot or the next, never half of each, and a load that dies half-way
leaves the previous one serving. Every read names the snapshot it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

# The environment variable the servers (TorchServe's handler, Triton's model) read.
STORE_URL_ENV = "BASKET_STORE_URL"
# Seconds a server waits for the store before answering 503.
READ_TIMEOUT_S = 0.5
# Seconds `basket store load`/`append` wait on one write.
WRITE_TIMEOUT_S = 60.0


class StoreUnavailable(RuntimeError):
    """The store cannot be read or written now (down, timed out, missing, never loaded).
    The message names the store by its URL without credentials."""


@dataclass(frozen=True)
class SnapshotInfo:
    """One loaded snapshot: its version, when it was made, from what, for how many customers."""

    version: str
    created: str  # UTC, ISO 8601
    users: int
    source: str  # the data folder it was loaded from
    fingerprint: str  # the data fingerprint of that folder

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StoreRead:
    """What one read found: the snapshot's version, the record of each customer it holds
    (customers it does not hold are absent), and the nightly answer stored for each customer
    that has one."""

    snapshot: str
    records: dict[int, bytes]
    answers: dict[int, bytes] = field(default_factory=dict)


class HistoryStore(Protocol):
    """The interface both backends implement (`basket.serving.store.connect.open_store` picks one)."""

    url: str  # without credentials, for messages

    def read(self, user_ids: Sequence[int]) -> StoreRead:
        """The current snapshot's records of `user_ids`, all from that one snapshot."""

    def replace(self, batches: Iterable[tuple[Sequence[int], Sequence[bytes]]], info: SnapshotInfo):
        """Write a new snapshot from (user ids, records) batches, then make it current (its
        info's `users` is the count written) and drop the older ones. Until the pointer
        moves, readers see the previous snapshot."""

    def write_current(
        self, version: str, user_ids: Sequence[int], records: Sequence[bytes]
    ) -> bool:
        """Replace these customers' records in snapshot `version` if it is still the current
        one (True), else write nothing (False)."""

    def write_answers(
        self, version: str, user_ids: Sequence[int], answers: Sequence[bytes]
    ) -> bool:
        """Store these customers' nightly answers beside snapshot `version` if it is still the
        current one (True), else write nothing (False). A new snapshot starts with none."""

    def info(self) -> SnapshotInfo | None:
        """The current snapshot, or None when nothing was loaded yet."""

    def close(self) -> None:
        """Release connections."""


def redact(url: str) -> str:
    """`url` without a password (redis://:secret@host -> redis://:***@host)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def no_snapshot(url: str) -> StoreUnavailable:
    """The error for a store nothing was loaded into yet."""
    return StoreUnavailable(
        f"history store {url} holds no snapshot yet: run `basket store load DATA --store URL`"
    )
