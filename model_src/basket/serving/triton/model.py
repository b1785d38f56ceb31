"""The Triton Python-backend model of basket: `basket package --triton DIR` copies this file to
DIR/basket/1/model.py, next to the winner's model dir (`model/`) and this package (`basket/`).

Tensors mirror the TorchServe contract, one customer per request (batch dimension 1):
  in   PRODUCT_IDS INT32 [n]    every past order's product ids, oldest order first
       ORDER_LENGTHS INT32 [m]  products in each of the m orders (sums to n)
       K INT32 [1]              optional, default 10
       ORDER_DOW, ORDER_HOUR INT32 [m], DAYS_SINCE_PRIOR FP32 [m]   optional order context
       NEXT_ORDER FP32 [3]      optional (dow, hour, days since prior; -1/-1/NaN unknown)
       USER_ID INT32 [1]        optional, the customer's id: with a history store
                                (BASKET_STORE_URL), their stored orders come first and the
                                orders above (optional then) follow; without one, TIFU-KNN
                                leaves the customer out of their own neighbours
       REQUEST_ONLY BOOL [1]    optional: score the orders above alone, store or not
                                (the JSON request's "history": "request")
  out  TOP_PRODUCT_IDS INT32 [k], TOP_SCORES FP32 [k]               the top-K ranking
       BASKET_PRODUCT_IDS INT32 [b]                                 the predicted basket
       UNKNOWN_PRODUCT_IDS INT32 [u]                                ids the model does not know
       HISTORY, SNAPSHOT, FALLBACK, COMPUTED BYTES [1]    where the history came from
                                ("store", "store+request", "request"), the store's snapshot
                                (or ""), why the answer is the popular fallback (or ""), and
                                whether it is the stored nightly answer or computed live
Triton's dynamic batcher hands `execute` several requests; they are parsed with the
limits TorchServe applies and scored by the same `OnlineScorer`, in one
`Recommender.recommend` call. A store that cannot be read answers UNAVAILABLE (HTTP 503).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from basket.config.serving import RequestLimits  # noqa: E402
from basket.serving.online import OnlineScorer  # noqa: E402
from basket.serving.requests import RequestError, request_from_arrays  # noqa: E402
from basket.serving.store.connect import store_from_environment  # noqa: E402

OUTPUTS = {
    "TOP_PRODUCT_IDS": ("product_ids", np.int32),
    "TOP_SCORES": ("scores", np.float32),
    "BASKET_PRODUCT_IDS": ("basket_product_ids", np.int32),
}
TEXT_OUTPUTS = {
    "HISTORY": "history",
    "SNAPSHOT": "snapshot",
    "FALLBACK": "fallback",
    "COMPUTED": "computed",
}


def _input(request, name: str, dtype):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().astype(dtype).ravel()


class TritonPythonModel:
    """Loads the winner once per model instance; answers batches of customers."""

    def initialize(self, args):
        # The archive's request limits, written into config.pbtxt by `basket package --triton`.
        parameters = json.loads(args["model_config"]).get("parameters", {})
        settings = {key: value["string_value"] for key, value in parameters.items()}
        # One thread per instance, as TorchServe's workers: instances run side by side, one per core.
        threads = int(settings.get("torch_threads", 1))
        torch.set_num_threads(threads)
        limits = RequestLimits.from_mapping(settings)
        self.scorer = OnlineScorer.from_model_dir(
            HERE / "model", limits, store_from_environment(), threads
        )

    def _parse(self, request):
        k = _input(request, "K", np.int64)
        following = _input(request, "NEXT_ORDER", np.float64)
        user_id = _input(request, "USER_ID", np.int64)
        request_only = _input(request, "REQUEST_ONLY", bool)
        return request_from_arrays(
            _input(request, "PRODUCT_IDS", np.int64),
            _input(request, "ORDER_LENGTHS", np.int64),
            self.scorer.model.vocab,
            self.scorer.limits,
            k=None if k is None else int(k[0]),
            order_dow=_input(request, "ORDER_DOW", np.int64),
            order_hour=_input(request, "ORDER_HOUR", np.int64),
            days_since_prior=_input(request, "DAYS_SINCE_PRIOR", np.float32),
            next_context=following,
            user_id=None if user_id is None else int(user_id[0]),
            request_only=request_only is not None and bool(request_only[0]),
        )

    def execute(self, requests):
        parsed = []
        for request in requests:
            try:
                parsed.append(self._parse(request))
            except (RequestError, ValueError) as error:  # e.g. tensors of mismatched shapes
                parsed.append(
                    error if isinstance(error, RequestError) else RequestError(str(error))
                )
        return [_response(status, body) for status, body in self.scorer.answer_parsed(parsed)]


def _response(status: int, body: dict):
    """Triton's response for one (status, answer) of `OnlineScorer.answer_parsed`."""
    if status != 200:
        code = (
            pb_utils.TritonError.UNAVAILABLE if status == 503 else pb_utils.TritonError.INVALID_ARG
        )
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(body["message"], code))
    tensors = [
        pb_utils.Tensor(name, np.array([body[key]], dtype).reshape(1, -1))
        for name, (key, dtype) in OUTPUTS.items()
    ]
    tensors.append(
        pb_utils.Tensor("UNKNOWN_PRODUCT_IDS", np.array([body["unknown"]], np.int32).reshape(1, -1))
    )
    tensors += [
        pb_utils.Tensor(name, np.array([[(body[key] or "").encode()]], dtype=np.object_))
        for name, key in TEXT_OUTPUTS.items()
    ]
    return pb_utils.InferenceResponse(output_tensors=tensors)
