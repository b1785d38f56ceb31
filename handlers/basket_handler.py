"""TorchServe handler for `basket.mar`: a thin shell over `basket.serving.online.OnlineScorer`.

TorchServe hands the handler a server-side batch of requests; all valid ones
are scored in one `Recommender.recommend` call (the call batch scoring makes),
and each request gets its own status: 200 with the answer of docs/reference/http-api.md, or a
4xx JSON error naming what is wrong. The worker never dies on bad input.
Request limits come from the `basket` section of the archive's model-config.yaml; the
history store that requests by customer id read from comes from the server's environment
(`BASKET_STORE_URL`), never from the archive, so credentials stay out of it.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus

import torch
from ts.torch_handler.base_handler import BaseHandler

from basket.config.serving import RequestLimits
from basket.serving.online import OnlineScorer
from basket.serving.store.connect import store_from_environment

logger = logging.getLogger(__name__)


class BasketHandler(BaseHandler):
    """Multi-label next-basket answers for any kind of `basket` model."""

    def initialize(self, context):
        """Load the model dir TorchServe unpacked the archive into (`--extra-files`)."""
        self.manifest = context.manifest
        self.model_yaml_config = getattr(context, "model_yaml_config", None) or {}
        settings = self.model_yaml_config.get("basket", {})
        # One thread per worker (torch's and the model's own): TorchServe runs several
        # workers, one per core.
        threads = int(settings.get("torch_threads", 1))
        torch.set_num_threads(threads)
        self.scorer = OnlineScorer.from_model_dir(
            context.system_properties["model_dir"],
            RequestLimits.from_mapping(settings),
            store_from_environment(),
            threads,
        )
        logger.info(
            "basket model %s (%s) ready, limits %s, history store %s",
            self.scorer.version,
            self.scorer.model.kind,
            self.scorer.limits.as_dict(),
            self.scorer.store.url if self.scorer.store else "none",
        )
        self.initialized = True

    def preprocess(self, data):
        """(bodies, sizes): each request's body as TorchServe decoded it, and its byte size."""
        bodies, sizes = [], []
        for idx, request in enumerate(data):
            body = request.get("body")
            if body is None:
                body = request.get("data")
            bodies.append(body)
            length = (
                self.context.get_request_header(idx, "Content-Length") if self.context else None
            )
            sizes.append(int(length) if length and str(length).isdigit() else None)
        return bodies, sizes

    def inference(self, data, *args, **kwargs):
        """One (status, answer) per request."""
        bodies, sizes = data
        started = time.perf_counter()
        answers = self.scorer.answer_batch(bodies, sizes)
        valid = sum(status == 200 for status, _ in answers)
        logger.info(
            "scored a batch of %d requests (%d valid) in %.1f ms",
            len(bodies), valid, 1000 * (time.perf_counter() - started),
        )  # fmt: skip
        return answers

    def postprocess(self, data):
        """Set each request's HTTP status; return the JSON bodies in request order."""
        for idx, (status, _) in enumerate(data):
            if status != 200:
                self.context.set_response_status(status, HTTPStatus(status).phrase, idx)
            self.context.set_response_content_type(idx, "application/json")
        return [body for _, body in data]
