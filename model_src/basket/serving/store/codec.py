"""The bytes the history store keeps per customer: one record, decoded without parsing.

    header  16 bytes   format, next order's day and hour, order count, line count, next gap
    orders  16 bytes × n   order id, products in it, days since prior, day, hour
    lines    4 bytes × L   product ids, oldest order first, in cart order

Little-endian and 4-byte aligned throughout, so a block of customers is encoded as one
int32 array by scattering whole words (no Python loop over orders or lines), and a record
decodes with three `np.frombuffer` views.
"""

from __future__ import annotations

import numpy as np

from basket.data.customer_history import CustomerHistory
from basket.data.history import Histories

FORMAT = 1
HEADER = np.dtype(
    [("format", "u1"), ("pad", "u1"), ("next_dow", "i1"), ("next_hour", "i1"),
     ("n_orders", "<i4"), ("n_lines", "<i4"), ("next_days", "<f4")]
)  # fmt: skip
ORDER = np.dtype(
    [("order_id", "<i4"), ("length", "<i4"), ("days", "<f4"), ("dow", "i1"), ("hour", "i1"),
     ("pad", "<u2")]
)  # fmt: skip
WORD = 4
HEADER_WORDS, ORDER_WORDS = HEADER.itemsize // WORD, ORDER.itemsize // WORD


class CorruptRecord(ValueError):
    """A stored record that is not in this format (another version wrote it, or it is damaged)."""


def encode_histories(histories: Histories) -> list[bytes]:
    """Every user's record of `histories`, in user order."""
    orders_per_user = histories.orders_per_user()
    lines_per_user = np.diff(histories.line_offsets[histories.order_offsets])
    words_per_user = HEADER_WORDS + ORDER_WORDS * orders_per_user + lines_per_user
    starts = np.concatenate([[0], np.cumsum(words_per_user)])
    words = np.zeros(int(starts[-1]), dtype="<i4")

    header = np.zeros(histories.n_users, HEADER)
    header["format"] = FORMAT
    header["next_dow"], header["next_hour"] = histories.next_dow, histories.next_hour
    header["n_orders"], header["n_lines"] = orders_per_user, lines_per_user
    header["next_days"] = histories.next_days_since_prior
    _scatter(words, starts[:-1], header.view("<i4").reshape(-1, HEADER_WORDS))

    user_of_order = histories.user_of_order()
    records = np.zeros(len(histories.order_ids), ORDER)
    records["order_id"], records["length"] = histories.order_ids, histories.basket_sizes()
    records["days"] = histories.days_since_prior
    records["dow"], records["hour"] = histories.order_dow, histories.order_hour
    order_index = np.arange(len(records)) - histories.order_offsets[user_of_order]
    _scatter(
        words,
        starts[user_of_order] + HEADER_WORDS + ORDER_WORDS * order_index,
        records.view("<i4").reshape(-1, ORDER_WORDS),
    )

    user_of_line = user_of_order[histories.order_of_line()]
    first_line = histories.line_offsets[histories.order_offsets[:-1]]
    line_index = np.arange(len(histories.product_ids)) - first_line[user_of_line]
    lines_start = starts[:-1] + HEADER_WORDS + ORDER_WORDS * orders_per_user
    words[lines_start[user_of_line] + line_index] = histories.product_ids

    raw = memoryview(words.view(np.uint8))
    byte_starts = (starts * WORD).tolist()
    return [bytes(raw[a:b]) for a, b in zip(byte_starts[:-1], byte_starts[1:], strict=True)]


def _scatter(words: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """Write each row of `rows` (r, w) at word `starts[r]` onwards."""
    words[starts[:, None] + np.arange(rows.shape[1])] = rows


def decode(record: bytes) -> CustomerHistory:
    """The customer history one record holds."""
    if len(record) < HEADER.itemsize:
        raise CorruptRecord(f"a record of {len(record)} bytes is shorter than its header")
    header = np.frombuffer(record, HEADER, count=1)[0]
    n_orders, n_lines = int(header["n_orders"]), int(header["n_lines"])
    expected = HEADER.itemsize + ORDER.itemsize * n_orders + WORD * n_lines
    if header["format"] != FORMAT or len(record) != expected:
        raise CorruptRecord(
            f"record format {header['format']} of {len(record)} bytes; expected format "
            f"{FORMAT} of {expected} bytes"
        )
    orders = np.frombuffer(record, ORDER, count=n_orders, offset=HEADER.itemsize)
    products = np.frombuffer(
        record, "<i4", count=n_lines, offset=HEADER.itemsize + ORDER.itemsize * n_orders
    )
    return CustomerHistory(
        order_lengths=orders["length"].astype(np.int32),
        product_ids=products.astype(np.int32),
        order_dow=orders["dow"].astype(np.int8),
        order_hour=orders["hour"].astype(np.int8),
        days_since_prior=orders["days"].astype(np.float32),
        order_ids=orders["order_id"].astype(np.int32),
        next_context=(
            int(header["next_dow"]),
            int(header["next_hour"]),
            float(header["next_days"]),
        ),
    )


def encode(customer: CustomerHistory) -> bytes:
    """One customer's record (the store's append path; blocks use `encode_histories`)."""
    header = np.zeros(1, HEADER)
    header["format"] = FORMAT
    header["next_dow"], header["next_hour"], header["next_days"] = customer.next_context
    header["n_orders"], header["n_lines"] = customer.n_orders, len(customer.product_ids)
    records = np.zeros(customer.n_orders, ORDER)
    records["order_id"], records["length"] = customer.order_ids, customer.order_lengths
    records["days"] = customer.days_since_prior
    records["dow"], records["hour"] = customer.order_dow, customer.order_hour
    return header.tobytes() + records.tobytes() + customer.product_ids.astype("<i4").tobytes()
