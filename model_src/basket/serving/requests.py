"""Online requests: JSON bodies in, checked against the limits, `ParsedRequest`s out.

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
listed in `unknown` and still shape the features.

`user_id` names the customer. On a server with a history store (`basket.serving.store`) the
customer's stored orders come first and the request's `orders` (those placed since the
snapshot, optional) follow; `{"user_id": 42}` alone is a whole request. `"history":
"request"` scores the request's orders alone. Without a store, `user_id` only tells a
neighbour model (TIFU-KNN) which customer to leave out, as batch scoring does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from basket.config.serving import RequestLimits
from basket.data.customer_history import DEFAULT_GAP_DAYS, CustomerHistory
from basket.data.vocab import Vocabulary

ORDER_CONTEXT = ("order_dow", "order_hour_of_day", "days_since_prior_order")
CONTEXT_RANGES = {
    "order_dow": (0, 6),
    "order_hour_of_day": (0, 23),
    "days_since_prior_order": (0, 365),
}


ERROR_TYPES = {400: "BadRequest", 413: "PayloadTooLarge", 503: "ServiceUnavailable"}
# What a request's "history" may say: "auto" (the store's orders, then the request's, when the
# server has a store and the request names a customer) or "request" (the request's alone).
HISTORY_CHOICES = ("auto", "request")


class RequestError(ValueError):
    """A request the server cannot answer: `status` is the HTTP code (400 malformed, 413 too
    large, 503 the history store cannot be read now)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status

    def body(self) -> dict:
        """The JSON error body, shaped like TorchServe's own errors."""
        return {"code": self.status, "type": ERROR_TYPES[self.status], "message": str(self)}


@dataclass
class ParsedRequest:
    """One valid request: the orders it carries (every line, as batch data holds them: ids
    outside the model's vocabulary included) with their context and the next order's, k,
    the unknown items, the customer id, and whether to score the request's orders alone."""

    history: CustomerHistory
    k: int
    unknown: list = field(default_factory=list)
    user_id: int | None = None
    request_only: bool = False


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
        kinds = set(map(type, items))
        if len(kinds) == 1:  # all names or all ids: no test per item
            is_name = np.full(len(items), str in kinds)
        else:
            is_name = np.fromiter((isinstance(item, str) for item in items), bool, len(items))
        ids = np.full(len(items), -1, dtype=np.int64)
        if is_name.any():
            named = items if is_name.all() else [items[i] for i in np.flatnonzero(is_name)]
            names = pd.Series(named, dtype=str)
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
            ids[~is_name] = (
                items if not is_name.any() else [items[i] for i in np.flatnonzero(~is_name)]
            )
        known = self.vocab.index_of(ids) >= 0
        unknown = [items[i] for i in np.flatnonzero(~known)]
        return ids.astype(np.int32), unknown


def _check_item(item, where: str, limits: RequestLimits) -> None:
    if isinstance(item, bool) or not isinstance(item, (str, int)):
        raise RequestError(
            f"{where} is {type(item).__name__} {json.dumps(item)[:40]}; "
            "items must be product names (strings) or product ids (integers)"
        )
    if isinstance(item, str) and len(item) > limits.max_name_length:
        raise RequestError(
            f"{where} is a name of {len(item)} characters; the limit is {limits.max_name_length}",
            413,
        )
    if isinstance(item, int) and not 0 < item < 2**31:
        raise RequestError(f"{where} is id {item}; product ids are positive 32-bit integers")


def _context_value(order: dict, key: str, where: str):
    value = order.get(key)
    if value is None:
        return None
    low, high = CONTEXT_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"{where}.{key} must be a number from {low} to {high}, got {value!r}")
    return value


def _split_order(order, where: str, limits: RequestLimits) -> tuple[list, dict]:
    """(items, context) of one order given as a list or as an object with `products`."""
    context = {}
    if isinstance(order, dict):
        extra = set(order) - {"products", *ORDER_CONTEXT}
        if extra or "products" not in order:
            raise RequestError(
                f"{where} must have 'products' and only {', '.join(ORDER_CONTEXT)} besides; "
                f"got keys {sorted(order)}"
            )
        context = {key: _context_value(order, key, where) for key in ORDER_CONTEXT}
        order = order["products"]
    if not isinstance(order, list):
        raise RequestError(
            f"{where} is {type(order).__name__}; each order must be a list of product names or ids"
        )
    if len(order) > limits.max_products_per_order:
        raise RequestError(
            f"{where} has {len(order)} products; the limit is {limits.max_products_per_order}", 413
        )
    if not _plainly_valid(order, limits):
        for position, item in enumerate(order):
            _check_item(item, f"{where}[{position}]", limits)
    return order, context


def _plainly_valid(items: list, limits: RequestLimits) -> bool:
    """Whether every item is a name within the length limit or every item an id in range,
    checked a whole order at once; False sends the order to the item-by-item check, which
    names the bad item (a mix of names and ids, and bools, also go there)."""
    kinds = set(map(type, items))
    if kinds == {str}:
        return max(map(len, items)) <= limits.max_name_length
    if kinds == {int}:
        return 0 < min(items) and max(items) < 2**31
    return not items


def _unwrap(payload, limits: RequestLimits) -> tuple[list, int, dict]:
    """(orders, k, the rest: next-order context, user_id, history) of a decoded request body."""
    if isinstance(payload, list):
        return payload, limits.default_k, {"user_id": None, "history": "auto"}
    if not isinstance(payload, dict):
        raise RequestError(
            f"the body is a JSON {type(payload).__name__}; expected a list of orders, "
            'an object {"orders": [...], "k": 10} or {"user_id": 42}'
        )
    extra = set(payload) - {"orders", "k", "next_order", "user_id", "history"}
    if extra or not {"orders", "user_id"} & set(payload):
        raise RequestError(
            "the request object needs 'orders' or 'user_id' (or both) and may have 'k', "
            f"'next_order' and 'history'; got keys {sorted(payload)}"
        )
    user_id = payload.get("user_id")
    if user_id is not None and (
        isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < 2**31
    ):
        raise RequestError(f"user_id must be a positive 32-bit integer, got {user_id!r}")
    history = payload.get("history", "auto")
    if history not in HISTORY_CHOICES:
        raise RequestError(f"history must be one of {', '.join(HISTORY_CHOICES)}, got {history!r}")
    k = payload.get("k", limits.default_k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise RequestError(f"k must be an integer from 1 to {limits.max_k}, got {k!r}")
    following = payload.get("next_order") or {}
    if not isinstance(following, dict) or set(following) - set(ORDER_CONTEXT):
        raise RequestError(
            f"next_order must be an object with keys among {', '.join(ORDER_CONTEXT)}"
        )
    following = {key: _context_value(following, key, "next_order") for key in ORDER_CONTEXT}
    orders = payload.get("orders", [])
    if not isinstance(orders, list):
        raise RequestError("'orders' must be a list of orders, oldest first")
    return orders, k, {**following, "user_id": user_id, "history": history}


def decode_body(body, size: int | None, limits: RequestLimits):
    """The JSON value of a request body (bytes, text or already decoded), size-checked."""
    if isinstance(body, (bytes, bytearray, str)):
        size = len(body)
    if size is not None and size > limits.max_body_bytes:
        raise RequestError(
            f"the body is {size:,} bytes; the limit is {limits.max_body_bytes:,} (max_body_bytes)",
            413,
        )
    if not isinstance(body, (bytes, bytearray, str)):
        return body
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(f"the body is not valid JSON: {error}") from None


def parse_request(payload, lookup: ProductLookup, limits: RequestLimits) -> ParsedRequest:
    """A decoded request body as a `ParsedRequest`, or `RequestError` naming what is wrong."""
    orders, k, rest = _unwrap(payload, limits)
    if len(orders) > limits.max_orders:
        raise RequestError(f"{len(orders)} orders; the limit is {limits.max_orders}", 413)
    split = [_split_order(order, f"orders[{i}]", limits) for i, order in enumerate(orders)]
    # Empty orders are skipped, like orders without lines in batch data.
    split = [(items, context) for items, context in split if items]
    ids, unknown = lookup.resolve([item for items, _ in split for item in items])
    contexts = [context for _, context in split]
    gaps = [c.get("days_since_prior_order") for c in contexts]
    # A gap not given: none before the first order, `DEFAULT_GAP_DAYS` before the others.
    gaps = [
        (math.nan if i == 0 else DEFAULT_GAP_DAYS) if g is None else g for i, g in enumerate(gaps)
    ]
    history = CustomerHistory(
        order_lengths=np.array([len(items) for items, _ in split], np.int32),
        product_ids=ids,
        order_dow=np.array([_or(c.get("order_dow"), -1) for c in contexts], np.int8),
        order_hour=np.array([_or(c.get("order_hour_of_day"), -1) for c in contexts], np.int8),
        days_since_prior=np.array(gaps, np.float32),
        order_ids=np.full(len(split), -1, np.int32),
        next_context=(
            _or(rest.get("order_dow"), -1),
            _or(rest.get("order_hour_of_day"), -1),
            _or(rest.get("days_since_prior_order"), math.nan),
        ),
    )
    return ParsedRequest(
        history=history,
        k=k,
        unknown=list(dict.fromkeys(unknown)),
        user_id=rest["user_id"],
        request_only=rest["history"] == "request",
    )


def _or(value, default):
    return default if value is None else value


def request_from_arrays(
    product_ids: np.ndarray | None,
    order_lengths: np.ndarray | None,
    vocab: Vocabulary,
    limits: RequestLimits,
    k: int | None = None,
    order_dow: np.ndarray | None = None,
    order_hour: np.ndarray | None = None,
    days_since_prior: np.ndarray | None = None,
    next_context: np.ndarray | None = None,
    user_id: int | None = None,
    request_only: bool = False,
) -> ParsedRequest:
    """A `ParsedRequest` from arrays (Triton's tensors): every order's product ids concatenated,
    oldest first, with the products per order; optional context per order and for the next
    order (-1 / NaN unknown). The same limits and ranges as a JSON request, or `RequestError`."""
    product_ids = _array(product_ids, np.int64)
    lengths = _array(order_lengths, np.int64)
    n = len(lengths)
    k = limits.default_k if k is None else int(k)
    if not 1 <= k <= limits.max_k:
        raise RequestError(f"K must be from 1 to {limits.max_k}, got {k}")
    if user_id is not None and not 0 < user_id < 2**31:
        raise RequestError(f"USER_ID must be a positive 32-bit integer, got {user_id}")
    if n > limits.max_orders:
        raise RequestError(f"{n} orders; the limit is {limits.max_orders}", 413)
    if n and int(lengths.max()) > limits.max_products_per_order:
        raise RequestError(
            f"an order of {int(lengths.max())} products; the limit is "
            f"{limits.max_products_per_order}",
            413,
        )
    if (lengths < 0).any() or lengths.sum() != len(product_ids):
        raise RequestError(
            f"order lengths sum to {int(lengths.sum())} but {len(product_ids)} product ids came"
        )
    if (product_ids <= 0).any():
        raise RequestError(
            f"product id {int(product_ids[product_ids <= 0][0])}; product ids are positive"
        )
    dow = _per_order(order_dow, n, "ORDER_DOW", -1, np.int64)
    hour = _per_order(order_hour, n, "ORDER_HOUR", -1, np.int64)
    gaps = _per_order(days_since_prior, n, "DAYS_SINCE_PRIOR", math.nan, np.float32)
    gaps = np.where(np.isnan(gaps) & (np.arange(n) > 0), DEFAULT_GAP_DAYS, gaps)
    following = (
        np.array([-1, -1, math.nan]) if next_context is None else _array(next_context, np.float64)
    )
    if len(following) != 3:
        raise RequestError(f"NEXT_ORDER holds (dow, hour, days), got {len(following)} values")
    for name, values in (("ORDER_DOW", dow), ("ORDER_HOUR", hour), ("DAYS_SINCE_PRIOR", gaps),
                         ("NEXT_ORDER", following)):  # fmt: skip
        _check_ranges(name, values)
    nonempty = lengths > 0
    known = vocab.index_of(product_ids) >= 0
    history = CustomerHistory(
        order_lengths=lengths[nonempty].astype(np.int32),
        product_ids=product_ids.astype(np.int32),
        order_dow=dow[nonempty].astype(np.int8),
        order_hour=hour[nonempty].astype(np.int8),
        days_since_prior=gaps[nonempty].astype(np.float32),
        order_ids=np.full(int(nonempty.sum()), -1, np.int32),
        next_context=(int(following[0]), int(following[1]), float(following[2])),
    )
    return ParsedRequest(
        history=history,
        k=k,
        unknown=list(dict.fromkeys(product_ids[~known].astype(int).tolist())),
        user_id=user_id,
        request_only=request_only,
    )


def _array(values, dtype) -> np.ndarray:
    return np.zeros(0, dtype) if values is None else np.asarray(values, dtype).ravel()


def _per_order(values, n: int, name: str, missing, dtype) -> np.ndarray:
    if values is None:
        return np.full(n, missing, dtype)
    values = _array(values, dtype)
    if len(values) != n:
        raise RequestError(f"{name} has {len(values)} values for {n} orders")
    return values


# The `CONTEXT_RANGES` keys each tensor holds, one per column (NEXT_ORDER: all three).
_TENSOR_CONTEXT = {
    "ORDER_DOW": ["order_dow"],
    "ORDER_HOUR": ["order_hour_of_day"],
    "DAYS_SINCE_PRIOR": ["days_since_prior_order"],
    "NEXT_ORDER": list(ORDER_CONTEXT),
}


def _check_ranges(name: str, values: np.ndarray) -> None:
    """Context values within `CONTEXT_RANGES`, or unknown (-1 for day and hour, NaN for days)."""
    keys = _TENSOR_CONTEXT[name]
    columns = values.reshape(-1, len(keys)).T if len(keys) > 1 else [values]
    for key, column in zip(keys, columns, strict=True):
        low, high = CONTEXT_RANGES[key]
        unknown = np.isnan(column) if key == "days_since_prior_order" else column == -1
        bad = ~unknown & ((column < low) | (column > high))
        if bad.any():
            raise RequestError(
                f"{name} {key} must be from {low} to {high} (or unknown), got {column[bad][0]!r}"
            )
