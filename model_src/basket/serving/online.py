"""Online answers: parsed requests in, the answer of docs/reference/http-api.md out, through `Recommender.recommend`.

`OnlineScorer.answer_batch` parses every request of a server-side batch
(`basket.serving.requests`), reads the histories of the customers they name from the
history store in one call (when the server has one), scores every request with a
history in one `recommend` call, and returns one (status, body) per request: 200 with
the answer, or a 4xx/503 with `{"code", "type", "message"}`. The TorchServe handler and
Triton's model call it.

Where a request's history comes from is in its answer: `"history"` is "store" (the
customer's stored orders), "store+request" (those, then the request's orders) or
"request" (the request's orders alone), and `"snapshot"` the store version read.

`"computed"` says how: "nightly" when the answer is the one batch scoring stored beside the
customer's history (`basket.serving.store.nightly`), sliced to the request's k, or "live"
when the model ran. A stored answer is used only for a request by id alone (no orders, no
next-order context, k within what was stored) whose stored history and whose model are the
ones the answer was computed from; anything else runs the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basket.config.serving import RequestLimits
from basket.data.customer_history import CustomerHistory, customers_to_histories
from basket.models.model_meta import ModelMeta
from basket.models.registry import load_model
from basket.serving.requests import (
    ParsedRequest,
    ProductLookup,
    RequestError,
    decode_body,
    parse_request,
)
from basket.serving.store.base import HistoryStore, StoreUnavailable
from basket.serving.store.codec import CorruptRecord, decode
from basket.serving.store.nightly import NightlyAnswer, decode_answer, digest, model_digest


@dataclass(frozen=True)
class ResolvedHistory:
    """The history a request is answered from, and where it came from."""

    history: CustomerHistory | None  # None when a nightly answer stands in for it
    source: str  # "store", "store+request" or "request"
    snapshot: str | None
    # Why the answer is the popular-products fallback, when the history has no order.
    fallback: str = "popular"
    nightly: NightlyAnswer | None = None  # the stored answer, when it is still true


class OnlineScorer:
    """A loaded model answering online requests; the TorchServe handler, Triton and tests share it.
    `store`: the history store requests naming a customer read from (None: requests carry
    their histories)."""

    def __init__(
        self,
        model,
        version: str,
        limits: RequestLimits | None = None,
        store: HistoryStore | None = None,
    ):
        self.model = model
        self.version = version
        self.limits = limits or RequestLimits()
        self.store = store
        self.lookup = ProductLookup(model.vocab)
        self._model_digest = model_digest(version)
        counts = model.vocab.counts.astype(np.float64)
        self._popularity = (counts / max(counts.sum(), 1.0)).astype(np.float32)

    @classmethod
    def from_model_dir(
        cls,
        model_dir: Path | str,
        limits: RequestLimits | None = None,
        store: HistoryStore | None = None,
        threads: int | None = None,
    ):
        """Load the model of `model_dir` (any kind) with its version from model.json; `threads`
        bounds the threads of a model with a pool of its own (None: as it loads)."""
        model_dir = Path(model_dir)
        model = load_model(model_dir)
        if threads is not None:
            model.limit_threads(threads)
        return cls(model, ModelMeta.read(model_dir).version, limits, store)

    def answer_batch(self, bodies: list, sizes: list | None = None) -> list[tuple[int, dict]]:
        """(HTTP status, JSON body) for each request body; valid ones scored in one call."""
        sizes = sizes or [None] * len(bodies)
        parsed: list[ParsedRequest | RequestError] = []
        for body, size in zip(bodies, sizes, strict=True):
            try:
                parsed.append(
                    parse_request(decode_body(body, size, self.limits), self.lookup, self.limits)
                )
            except RequestError as error:
                parsed.append(error)
        return self.answer_parsed(parsed)

    def answer_parsed(self, requests: list[ParsedRequest | RequestError]) -> list[tuple[int, dict]]:
        """(status, body) of each request; those already refused keep their error, every one
        with a history is scored in one `recommend` call."""
        resolved = self._resolve(requests)
        answers: dict[int, tuple[int, dict]] = {
            i: (200, self._nightly_answer(requests[i], item))
            for i, item in enumerate(resolved)
            if isinstance(item, ResolvedHistory) and item.nightly is not None
        }
        scorable = [i for i, item in enumerate(resolved) if isinstance(item, ResolvedHistory)
                    and i not in answers and item.history.n_orders]  # fmt: skip
        if scorable:
            histories = customers_to_histories(
                [_user_id(requests[i], i) for i in scorable],
                [resolved[i].history for i in scorable],
            )
            recs = self.model.recommend(histories, max(requests[i].k for i in scorable))
            for row, i in enumerate(scorable):
                answers[i] = (200, self._answer(recs, row, requests[i], resolved[i]))
        for i, item in enumerate(resolved):
            if isinstance(item, RequestError):
                answers[i] = (item.status, item.body())
            elif i not in answers:
                answers[i] = (200, self._popular(requests[i], item))
        return [answers[i] for i in range(len(requests))]

    def _resolve(self, requests: list) -> list[ResolvedHistory | RequestError]:
        """Each request's history: the store's orders of its customer (read for the whole batch
        at once), then the request's; or the request's alone."""
        from_store = {
            i for i, r in enumerate(requests)
            if isinstance(r, ParsedRequest) and r.user_id is not None and not r.request_only
        }  # fmt: skip
        read, unavailable = None, None
        if from_store and self.store is not None:
            try:
                read = self.store.read(sorted({requests[i].user_id for i in from_store}))
            except StoreUnavailable as error:
                unavailable = RequestError(str(error), 503)
        resolved = []
        for i, request in enumerate(requests):
            if isinstance(request, RequestError) or i not in from_store:
                resolved.append(request if isinstance(request, RequestError)
                                else ResolvedHistory(request.history, "request", None))  # fmt: skip
            elif self.store is None and request.history.n_orders == 0:
                resolved.append(RequestError(
                    f"user_id {request.user_id} alone needs a history store, and this server "
                    "has none (set BASKET_STORE_URL); send the customer's orders instead"
                ))  # fmt: skip
            elif self.store is None:
                resolved.append(ResolvedHistory(request.history, "request", None))
            else:
                resolved.append(unavailable or self._from_store(request, read))
        return resolved

    def _from_store(self, request: ParsedRequest, read) -> ResolvedHistory | RequestError:
        record = read.records.get(request.user_id)
        if record is None:
            return ResolvedHistory(request.history, "request", read.snapshot, "unknown customer")
        nightly = self._still_true(request, record, read.answers.get(request.user_id))
        if nightly is not None:
            return ResolvedHistory(None, "store", read.snapshot, nightly=nightly)
        try:
            stored = decode(record)
        except CorruptRecord as error:
            return RequestError(
                f"history store {self.store.url}: customer {request.user_id}'s record in "
                f"snapshot {read.snapshot} is unreadable ({error}); reload the store", 503
            )  # fmt: skip
        if request.history.n_orders:
            return ResolvedHistory(stored.then(request.history), "store+request", read.snapshot)
        return ResolvedHistory(
            stored.with_next(request.history.next_context), "store", read.snapshot
        )

    def _still_true(
        self, request: ParsedRequest, record: bytes, stored: bytes | None
    ) -> NightlyAnswer | None:
        """The customer's stored answer if it answers `request` as the model would now: a
        request by id alone, k within the stored ranking, the same model and the same
        history; else None (the model runs)."""
        if stored is None or request.history.n_orders:
            return None
        dow, hour, days = request.history.next_context
        if dow >= 0 or hour >= 0 or not np.isnan(days):  # a next order the answer did not see
            return None
        answer = decode_answer(stored)
        if (
            answer is None
            or request.k > len(answer.product_ids)
            or answer.model_digest != self._model_digest
            or answer.history_digest != digest(record)
        ):
            return None
        return answer

    def _names(self, product_ids: np.ndarray) -> list[str]:
        return (
            self.model.vocab.product_names[self.model.vocab.index_of(product_ids)]
            .astype(str)
            .tolist()
        )

    def _answer(self, recs, row: int, request: ParsedRequest, resolved: ResolvedHistory) -> dict:
        """The answer of row `row` of `recs`, computed live for `request`."""
        basket = recs.basket_product_ids[recs.basket_offsets[row] : recs.basket_offsets[row + 1]]
        return self._ranked(
            recs.product_ids[row], recs.scores[row], basket, request, resolved, "live"
        )

    def _nightly_answer(self, request: ParsedRequest, resolved: ResolvedHistory) -> dict:
        """The answer batch scoring stored, cut to the request's k: what `_answer` gives live."""
        stored = resolved.nightly
        return self._ranked(stored.product_ids, stored.scores, stored.basket_product_ids,
                            request, resolved, "nightly")  # fmt: skip

    def _ranked(self, ids, scores, basket, request, resolved, computed: str) -> dict:
        """The JSON answer of a ranking (padded with -1) cut to the request's k, and a basket."""
        ids, scores = ids[: request.k], scores[: request.k]
        keep = ids >= 0
        return {
            "products": self._names(ids[keep]),
            "product_ids": ids[keep].astype(int).tolist(),
            "scores": scores[keep].astype(float).tolist(),
            "basket": self._names(basket),
            "basket_product_ids": basket.astype(int).tolist(),
            "unknown": request.unknown,
            "model_version": self.version,
            "fallback": None,
            "history": resolved.source,
            "snapshot": resolved.snapshot,
            "computed": computed,
        }

    def _popular(self, request: ParsedRequest, resolved: ResolvedHistory) -> dict:
        """The answer for a customer with no order: the most bought products."""
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
            "fallback": resolved.fallback,
            "history": resolved.source,
            "snapshot": resolved.snapshot,
            "computed": "live",
        }


def _user_id(request: ParsedRequest, position: int) -> int:
    """The request's customer id (so a neighbour model leaves out the same customer as batch),
    else -1 - position, which no stored customer has."""
    return -1 - position if request.user_id is None else request.user_id
