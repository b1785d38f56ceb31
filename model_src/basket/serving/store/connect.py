"""Which history store a URL names, and the one a server is configured with.

    sqlite:///relative/histories.sqlite, sqlite:////absolute/histories.sqlite, or a plain path
    redis://[:password@]host[:port][/db][?prefix=NAME], rediss://… (TLS)

Credentials belong in the URL the environment or the server's config gives
(`BASKET_STORE_URL`), never in a model archive.
"""

from __future__ import annotations

import os
from pathlib import Path

from basket.serving.store.base import READ_TIMEOUT_S, STORE_URL_ENV, HistoryStore
from basket.serving.store.redis_store import RedisStore
from basket.serving.store.sqlite_store import SQLiteStore

# The file name of the embedded store, beside the model store's archives (`make run`, the DAGs).
DEFAULT_STORE_FILE = "histories.sqlite"


def open_store(url: str, timeout_s: float = READ_TIMEOUT_S, writable: bool = False) -> HistoryStore:
    """The store `url` names. `writable` (loads and appends) creates a SQLite file; readers
    open it read-only. Raises ValueError for a URL of another kind."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, timeout_s)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite:///"), timeout_s, writable)
    if "://" in url or not url:
        raise ValueError(
            f"history store URL {url!r}: expected sqlite:///PATH, a file path or redis://HOST"
        )
    return SQLiteStore(url, timeout_s, writable)


def default_store_url(model_store: Path | str) -> str:
    """The embedded store beside the archives of `model_store` (what `make run` serves from)."""
    return f"sqlite:///{Path(model_store).resolve() / DEFAULT_STORE_FILE}"


def store_from_environment() -> HistoryStore | None:
    """The store `BASKET_STORE_URL` names for a server, or None when it is not set."""
    url = os.environ.get(STORE_URL_ENV, "").strip()
    return open_store(url) if url else None
