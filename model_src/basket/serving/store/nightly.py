"""The nightly answers the store keeps beside each customer's history: what batch scoring
answered for that customer, so a request by id is answered by a lookup while nothing changed.

One record per customer, little-endian and 4-byte aligned like the history records:

    header  28 bytes   format, top products kept (n), basket size (b),
                       the digest of the history record it was computed from,
                       the digest of the model version that computed it
    top      4 bytes × n   product ids, best first (-1 padded, as `recommend` gives them)
    scores   4 bytes × n   their scores (float32)
    basket   4 bytes × b   the predicted basket's product ids

An answer is used only while both digests still match: the customer's stored history is the
one it was computed from (an appended order changes the record, and so its digest), and the
server runs the model that computed it (a newly published model answers live until the
next batch run stores its own answers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from basket.models.base import Recommendations

FORMAT = 1
HEADER = np.dtype(
    [("format", "u1"), ("pad", "u1", 3), ("n_top", "<i4"), ("n_basket", "<i4"),
     ("history_digest", "<u8"), ("model_digest", "<u8")]
)  # fmt: skip
WORD = 4
HEADER_WORDS = HEADER.itemsize // WORD


@dataclass(frozen=True)
class NightlyAnswer:
    """One customer's stored answer, and the history and model it belongs to."""

    history_digest: int
    model_digest: int
    product_ids: np.ndarray  # (n,) int32, best first, -1 padded
    scores: np.ndarray  # (n,) float32
    basket_product_ids: np.ndarray  # (b,) int32


def digest(data: bytes) -> int:
    """A 64-bit digest of `data` (a history record, or a model version's UTF-8 bytes)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def model_digest(version: str) -> int:
    """The digest an answer carries for the model version that computed it."""
    return digest(version.encode())


def encode_answers(
    recs: Recommendations, history_records: list[bytes], version: str
) -> list[bytes]:
    """Each customer's answer record of `recs` (user order), keyed to that customer's history
    record (same order) and to the model `version`."""
    n_users, n_top = recs.product_ids.shape
    basket_sizes = np.diff(recs.basket_offsets)
    words_per_user = HEADER_WORDS + 2 * n_top + basket_sizes
    starts = np.concatenate([[0], np.cumsum(words_per_user)])
    words = np.zeros(int(starts[-1]), dtype="<i4")

    header = np.zeros(n_users, HEADER)
    header["format"], header["n_top"], header["n_basket"] = FORMAT, n_top, basket_sizes
    header["history_digest"] = [digest(record) for record in history_records]
    header["model_digest"] = model_digest(version)
    columns = np.arange(HEADER_WORDS + 2 * n_top)
    block = np.concatenate(
        [header.view("<i4").reshape(n_users, HEADER_WORDS),
         recs.product_ids.astype("<i4"), recs.scores.astype("<f4").view("<i4")],
        axis=1,
    )  # fmt: skip
    words[starts[:-1, None] + columns] = block

    user_of_line = np.repeat(np.arange(n_users), basket_sizes)
    line_index = np.arange(len(recs.basket_product_ids)) - recs.basket_offsets[user_of_line]
    words[starts[user_of_line] + HEADER_WORDS + 2 * n_top + line_index] = recs.basket_product_ids

    raw = memoryview(words.view(np.uint8))
    byte_starts = (starts * WORD).tolist()
    return [bytes(raw[a:b]) for a, b in zip(byte_starts[:-1], byte_starts[1:], strict=True)]


def decode_answer(record: bytes) -> NightlyAnswer | None:
    """The answer one record holds; None when it is not a record of this format (an answer
    the server cannot read is not used: the model answers live)."""
    if len(record) < HEADER.itemsize:
        return None
    header = np.frombuffer(record, HEADER, count=1)[0]
    n_top, n_basket = int(header["n_top"]), int(header["n_basket"])
    if header["format"] != FORMAT or len(record) != HEADER.itemsize + WORD * (2 * n_top + n_basket):
        return None
    body = np.frombuffer(record, "<i4", offset=HEADER.itemsize)
    return NightlyAnswer(
        history_digest=int(header["history_digest"]),
        model_digest=int(header["model_digest"]),
        product_ids=body[:n_top],
        scores=body[n_top : 2 * n_top].view("<f4"),
        basket_product_ids=body[2 * n_top :],
    )
