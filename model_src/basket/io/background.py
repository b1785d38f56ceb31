"""Work done in a background thread while the caller goes on: the next item of an iterator
read ahead, and each written result written behind. Used where reading or writing releases
the GIL (pyarrow, numpy), so the machine's other core does it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
_END = object()  # what `next` returns once an iterator is exhausted


@contextmanager
def write_behind():
    """A `submit(function, *args)` that runs each call in a background thread, in order, while
    the caller goes on (building and writing a chunk's parquet overlaps scoring the next one).
    At most one call is in flight; its error reaches the caller at the next submit or on
    leaving, and leaving waits for the last call."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="basket-write-behind") as pool:
        pending = []

        def submit(function, *args) -> None:
            if pending:
                pending.pop().result()
            pending.append(pool.submit(function, *args))

        yield submit
        if pending:
            pending.pop().result()


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items` in order, each next one produced in a background thread while the
    caller works on the current one: the next block of customers is read and built while
    this one is scored (reading releases the GIL; the machine has a core for it)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="basket-read-ahead") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item
