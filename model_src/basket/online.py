"""Online answers: JSON requests in, the DESIGN.md answer out, through `Recommender.recommend`.

A request is a list of past orders, oldest first, each a list of product names
(matched case-insensitively) or ids; or an object

    {"orders": [...], "k": 10, "next_order": {"order_dow": 2, "order_hour_of_day": 9,
                                              "days_since_prior_order": 7}, "user_id": 42}

where an order may also be an object `{"products": [...], "order_dow": ..,
"order_hour_of_day": .., "days_since_prior_order": ..}` carrying the Instacart
context batch scoring reads from orders.csv. Missing context is filled the way
batch scoring fills it for a customer without a `test` order (day and hour
unknown, -1) and with `DEFAULT_GAP_DAYS` between orders. Every line counts, as in
batch data: products outside the model's vocabulary (and names it does not know) are
listed in `unknown` and still shape the features. `user_id` (optional) is the
customer's id, so a neighbour model (TIFU-KNN) leaves out the same customer as batch.

`OnlineScorer.answer_batch` parses every request of a server-side batch, scores
all valid ones in one `recommend` call, and returns one (status, body) per
request: 200 with the answer, or a 4xx with `{"code", "type", "message"}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from basket.data.history import Histories, _offsets
from basket.data.vocab import Vocabulary
from basket.models.registry import load_model
from basket.serving_config import RequestLimits

# Instacart's median days between orders; used where a request gives no gap.
DEFAULT_GAP_DAYS = 7.0
ORDER_CONTEXT = ("order_dow", "order_hour_of_day", "days_since_prior_order")
CONTEXT_RANGES = {
    "order_dow": (0, 6),
    "order_hour_of_day": (0, 23),
    "days_since_prior_order": (0, 365),
}


class BadRequest(ValueError):
    """A request the server refuses: `status` is the HTTP code (400 malformed, 413 too large)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status

    def body(self) -> dict:
        """The JSON error body, shaped like TorchServe's own errors."""
        kind = "PayloadTooLarge" if self.status == 413 else "BadRequest"
        return {"code": self.status, "type": kind, "message": str(self)}


@dataclass
class ParsedRequest:
    """One valid request: product ids per order (every line, as batch data holds them: ids
    outside the model's vocabulary included), context, k, unknown items, the customer id."""

    orders: list[np.ndarray]
    order_dow: np.ndarray
    order_hour: np.ndarray
    days_since_prior: np.ndarray
    next_context: tuple[int, int, float]
    k: int
    unknown: list = field(default_factory=list)
    user_id: int | None = None


# Names that match no product get ids counting down from here, one per distinct name: they
# stay lines of their order (sizes, counts and recency as in batch) without meaning a product.
UNRESOLVED_NAME_ID = 2**31 - 1


class ProductLookup:
    """Resolves product names (case-insensitive) and ids to product ids."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        names = pd.Index(pd.Series(vocab.product_names, dtype=str).str.casefold())
        # The vocabulary is ordered by popularity: a repeated name resolves to its most bought product.
        first = ~names.duplicated()
        self._names = names[first]
        self._name_ids = vocab.product_ids[first]

    def resolve(self, items: list) -> tuple[np.ndarray, list]:
        """(a product id for every item, in request order; the items outside the vocabulary).

        Ids are kept as given, known to the model or not, as batch histories keep every line;
        a name outside the vocabulary gets a placeholder id (one per distinct name). Either way
        the item is reported as unknown, and the model scores it as batch scoring would."""
        if not items:
            return np.zeros(0, np.int32), []
        is_name = np.fromiter((isinstance(item, str) for item in items), bool, len(items))
        ids = np.full(len(items), -1, dtype=np.int64)
        if is_name.any():
            names = pd.Series([items[i] for i in np.flatnonzero(is_name)], dtype=str)
            folded = names.str.strip().str.casefold()
            pos = self._names.get_indexer(folded)
            by_name = np.where(pos >= 0, self._name_ids[np.maximum(pos, 0)], -1)
            # A name that matches nothing but is all digits is taken as an id.
            digits = names.str.fullmatch(r"\s*\d{1,9}\s*").to_numpy()
            by_name = np.where(
                (by_name < 0) & digits, pd.to_numeric(names.where(digits, "-1")), by_name
            )
            unresolved = by_name < 0
            codes, _ = pd.factorize(folded[unresolved])
            by_name[unresolved] = UNRESOLVED_NAME_ID - codes
            ids[is_name] = by_name
        if (~is_name).any():
            ids[~is_name] = [items[i] for i in np.flatnonzero(~is_name)]
        known = self.vocab.index_of(ids) >= 0
        unknown = [items[i] for i in np.flatnonzero(~known)]
        return ids.astype(np.int32), unknown


def _check_item(item, where: str, limits: RequestLimits) -> None:
    if isinstance(item, bool) or not isinstance(item, (str, int)):
        raise BadRequest(
            f"{where} is {type(item).__name__} {json.dumps(item)[:40]}; "
            "items must be product names (strings) or product ids (integers)"
        )
    if isinstance(item, str) and len(item) > limits.max_name_length:
        raise BadRequest(
            f"{where} is a name of {len(item)} characters; the limit is {limits.max_name_length}",
            413,
        )
    if isinstance(item, int) and not 0 < item < 2**31:
        raise BadRequest(f"{where} is id {item}; product ids are positive 32-bit integers")


def _context_value(order: dict, key: str, where: str):
    value = order.get(key)
    if value is None:
        return None
    low, high = CONTEXT_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"{where}.{key} must be a number from {low} to {high}, got {value!r}")
    return value


def _split_order(order, where: str, limits: RequestLimits) -> tuple[list, dict]:
    """(items, context) of one order given as a list or as an object with `products`."""
    context = {}
    if isinstance(order, dict):
        extra = set(order) - {"products", *ORDER_CONTEXT}
        if extra or "products" not in order:
            raise BadRequest(
                f"{where} must have 'products' and only {', '.join(ORDER_CONTEXT)} besides; "
                f"got keys {sorted(order)}"
            )
        context = {key: _context_value(order, key, where) for key in ORDER_CONTEXT}
        order = order["products"]
    if not isinstance(order, list):
        raise BadRequest(
            f"{where} is {type(order).__name__}; each order must be a list of product names or ids"
        )
    if len(order) > limits.max_products_per_order:
        raise BadRequest(
            f"{where} has {len(order)} products; the limit is {limits.max_products_per_order}", 413
        )
    for position, item in enumerate(order):
        _check_item(item, f"{where}[{position}]", limits)
    return order, context


def _unwrap(payload, limits: RequestLimits) -> tuple[list, int, dict]:
    """(orders, k, next-order context and user_id) of a decoded request body."""
    if isinstance(payload, list):
        return payload, limits.default_k, {"user_id": None}
    if not isinstance(payload, dict):
        raise BadRequest(
            f"the body is a JSON {type(payload).__name__}; expected a list of orders "
            'or an object {"orders": [...], "k": 10}'
        )
    extra = set(payload) - {"orders", "k", "next_order", "user_id"}
    if extra or "orders" not in payload:
        raise BadRequest(
            f"the request object needs 'orders' and may have 'k', 'next_order' and 'user_id'; "
            f"got keys {sorted(payload)}"
        )
    user_id = payload.get("user_id")
    if user_id is not None and (
        isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < 2**31
    ):
        raise BadRequest(f"user_id must be a positive 32-bit integer, got {user_id!r}")
    k = payload.get("k", limits.default_k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise BadRequest(f"k must be an integer from 1 to {limits.max_k}, got {k!r}")
    following = payload.get("next_order") or {}
    if not isinstance(following, dict) or set(following) - set(ORDER_CONTEXT):
        raise BadRequest(f"next_order must be an object with keys among {', '.join(ORDER_CONTEXT)}")
    following = {key: _context_value(following, key, "next_order") for key in ORDER_CONTEXT}
    if not isinstance(payload["orders"], list):
        raise BadRequest("'orders' must be a list of orders, oldest first")
    return payload["orders"], k, {**following, "user_id": user_id}


def decode_body(body, size: int | None, limits: RequestLimits):
    """The JSON value of a request body (bytes, text or already decoded), size-checked."""
    if isinstance(body, (bytes, bytearray, str)):
        size = len(body)
    if size is not None and size > limits.max_body_bytes:
        raise BadRequest(
            f"the body is {size:,} bytes; the limit is {limits.max_body_bytes:,} (max_body_bytes)",
            413,
        )
    if not isinstance(body, (bytes, bytearray, str)):
        return body
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def parse_request(payload, lookup: ProductLookup, limits: RequestLimits) -> ParsedRequest:
    """A decoded request body as a `ParsedRequest`, or `BadRequest` naming what is wrong."""
    orders, k, following = _unwrap(payload, limits)
    if len(orders) > limits.max_orders:
        raise BadRequest(f"{len(orders)} orders; the limit is {limits.max_orders}", 413)
    split = [_split_order(order, f"orders[{i}]", limits) for i, order in enumerate(orders)]
    # Empty orders are skipped, like orders without lines in batch data.
    split = [(items, context) for items, context in split if items]
    ids, unknown = lookup.resolve([item for items, _ in split for item in items])
    parsed = np.split(ids, np.cumsum([len(items) for items, _ in split])[:-1]) if split else []
    contexts = [context for _, context in split]
    gaps = [c.get("days_since_prior_order") for c in contexts]
    # A gap not given: none before the first order, `DEFAULT_GAP_DAYS` before the others.
    gaps = [
        (math.nan if i == 0 else DEFAULT_GAP_DAYS) if g is None else g for i, g in enumerate(gaps)
    ]
    return ParsedRequest(
        orders=parsed,
        order_dow=np.array([_or(c.get("order_dow"), -1) for c in contexts], np.int8),
        order_hour=np.array([_or(c.get("order_hour_of_day"), -1) for c in contexts], np.int8),
        days_since_prior=np.array(gaps, np.float32),
        next_context=(
            _or(following.get("order_dow"), -1),
            _or(following.get("order_hour_of_day"), -1),
            _or(following.get("days_since_prior_order"), math.nan),
        ),
        k=k,
        unknown=list(dict.fromkeys(unknown)),
        user_id=following["user_id"],
    )


def _or(value, default):
    return default if value is None else value


def request_from_arrays(
    product_ids: np.ndarray,
    order_lengths: np.ndarray,
    vocab: Vocabulary,
    k: int,
    order_dow: np.ndarray | None = None,
    order_hour: np.ndarray | None = None,
    days_since_prior: np.ndarray | None = None,
    next_context: tuple[int, int, float] = (-1, -1, math.nan),
    user_id: int | None = None,
) -> ParsedRequest:
    """A `ParsedRequest` from tensors (Triton): all orders' product ids concatenated, oldest
    first, with the products per order; context arrays per order, as in `parse_request`."""
    product_ids = np.asarray(product_ids, np.int64).ravel()
    lengths = np.asarray(order_lengths, np.int64).ravel()
    if lengths.sum() != len(product_ids) or (lengths < 0).any():
        raise BadRequest(
            f"order lengths sum to {int(lengths.sum())} but {len(product_ids)} product ids came"
        )
    n = len(lengths)
    known = vocab.index_of(product_ids) >= 0
    nonempty = lengths > 0
    orders = np.split(product_ids.astype(np.int32), np.cumsum(lengths)[:-1]) if n else []
    dow = np.full(n, -1) if order_dow is None else np.asarray(order_dow).ravel()
    hour = np.full(n, -1) if order_hour is None else np.asarray(order_hour).ravel()
    gaps = np.full(n, DEFAULT_GAP_DAYS, np.float32)
    gaps[:1] = math.nan
    if days_since_prior is not None:
        given = np.asarray(days_since_prior, np.float32).ravel()
        gaps = np.where(np.isnan(given) & (np.arange(n) > 0), DEFAULT_GAP_DAYS, given)
    return ParsedRequest(
        orders=[o for o, keep in zip(orders, nonempty, strict=True) if keep],
        order_dow=dow[nonempty].astype(np.int8),
        order_hour=hour[nonempty].astype(np.int8),
        days_since_prior=gaps[nonempty].astype(np.float32),
        next_context=next_context,
        k=int(k),
        unknown=list(dict.fromkeys(product_ids[~known].astype(int).tolist())),
        user_id=user_id,
    )


def requests_to_histories(requests: list[ParsedRequest]) -> Histories:
    """One `Histories` with a user per request, orders oldest first. The user id is the
    request's `user_id` (so a neighbour model excludes the same customer as in batch), else
    -1 - position, which no stored customer has."""
    orders = [order for request in requests for order in request.orders]
    sizes = np.array([len(order) for order in orders], dtype=np.int64)
    user_ids = [-1 - i if r.user_id is None else r.user_id for i, r in enumerate(requests)]
    return Histories(
        user_ids=np.array(user_ids, dtype=np.int32),
        order_offsets=_offsets(np.array([len(r.orders) for r in requests], dtype=np.int64)),
        order_ids=np.arange(len(orders), dtype=np.int32),
        order_dow=np.concatenate([r.order_dow for r in requests]).astype(np.int8),
        order_hour=np.concatenate([r.order_hour for r in requests]).astype(np.int8),
        days_since_prior=np.concatenate([r.days_since_prior for r in requests]).astype(np.float32),
        line_offsets=_offsets(sizes),
        product_ids=np.concatenate(orders).astype(np.int32) if orders else np.zeros(0, np.int32),
        next_dow=np.array([r.next_context[0] for r in requests], np.int8),
        next_hour=np.array([r.next_context[1] for r in requests], np.int8),
        next_days_since_prior=np.array([r.next_context[2] for r in requests], np.float32),
    )


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


class OnlineScorer:
    """A loaded model answering online requests; the TorchServe handler and tests share it."""

    def __init__(self, model, version: str, limits: RequestLimits | None = None):
        self.model = model
        self.version = version
        self.limits = limits or RequestLimits()
        self.lookup = ProductLookup(model.vocab)
        counts = model.vocab.counts.astype(np.float64)
        self._popularity = (counts / max(counts.sum(), 1.0)).astype(np.float32)

    @classmethod
    def from_model_dir(cls, model_dir: Path | str, limits: RequestLimits | None = None):
        """Load the model of `model_dir` (any kind) with its version from model.json."""
        model_dir = Path(model_dir)
        meta = json.loads((model_dir / "model.json").read_text())
        return cls(load_model(model_dir), str(meta.get("version", "unversioned")), limits)

    def answer_batch(self, bodies: list, sizes: list | None = None) -> list[tuple[int, dict]]:
        """(HTTP status, JSON body) for each request body; valid ones scored in one call."""
        sizes = sizes or [None] * len(bodies)
        parsed: list[ParsedRequest | BadRequest] = []
        for body, size in zip(bodies, sizes, strict=True):
            try:
                parsed.append(
                    parse_request(decode_body(body, size, self.limits), self.lookup, self.limits)
                )
            except BadRequest as error:
                parsed.append(error)
        valid = [p for p in parsed if isinstance(p, ParsedRequest)]
        answers = iter(self.answer_parsed(valid))
        return [
            (item.status, item.body()) if isinstance(item, BadRequest) else (200, next(answers))
            for item in parsed
        ]

    def answer_parsed(self, requests: list[ParsedRequest]) -> list[dict]:
        """The answer of each valid request; all with a history are scored in one call."""
        scorable = [i for i, request in enumerate(requests) if request.orders]
        answers = {}
        if scorable:
            batch = [requests[i] for i in scorable]
            recs = self.model.recommend(requests_to_histories(batch), max(r.k for r in batch))
            for row, i in enumerate(scorable):
                answers[i] = self._answer(recs, row, requests[i])
        return [answers.get(i) or self._popular(r) for i, r in enumerate(requests)]

    def _names(self, product_ids: np.ndarray) -> list[str]:
        return (
            self.model.vocab.product_names[self.model.vocab.index_of(product_ids)]
            .astype(str)
            .tolist()
        )

    def _answer(self, recs, row: int, request: ParsedRequest) -> dict:
        ids = recs.product_ids[row, : request.k]
        keep = ids >= 0
        ids = ids[keep]
        basket = recs.basket_product_ids[recs.basket_offsets[row] : recs.basket_offsets[row + 1]]
        return {
            "products": self._names(ids),
            "product_ids": ids.astype(int).tolist(),
            "scores": recs.scores[row, : request.k][keep].astype(float).tolist(),
            "basket": self._names(basket),
            "basket_product_ids": basket.astype(int).tolist(),
            "unknown": request.unknown,
            "model_version": self.version,
            "fallback": None,
        }

    def _popular(self, request: ParsedRequest) -> dict:
        """The answer for a customer with no known product: the most bought products."""
        k = min(request.k, len(self.model.vocab))
        ids = self.model.vocab.product_ids[:k]
        return {
            "products": self._names(ids),
            "product_ids": ids.astype(int).tolist(),
            "scores": self._popularity[:k].astype(float).tolist(),
            "basket": [],
            "basket_product_ids": [],
            "unknown": request.unknown,
            "model_version": self.version,
            "fallback": "popular",
        }
