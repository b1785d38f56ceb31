"""Online answers: parsed requests in, the DESIGN.md answer out, through `Recommender.recommend`.

`OnlineScorer.answer_batch` parses every request of a server-side batch
(`basket.online_request`), scores all valid ones in one `recommend` call, and
returns one (status, body) per request: 200 with the answer, or a 4xx with
`{"code", "type", "message"}`. The TorchServe handler and Triton's model call it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from basket.models.registry import load_model
from basket.online_request import (
    BadRequest,
    ParsedRequest,
    ProductLookup,
    decode_body,
    parse_request,
    requests_to_histories,
)
from basket.serving_config import RequestLimits


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
