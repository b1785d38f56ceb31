"""Online requests: JSON bodies in, checked against the limits, `ParsedRequest`s and one `Histories` out.

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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from basket.data.history import Histories, _offsets
from basket.data.vocab import Vocabulary
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
