"""The Triton Python-backend model of basket: `basket package --triton DIR` copies this file to
DIR/basket/1/model.py, next to the winner's model dir (`model/`) and this package (`basket/`).

Tensors mirror the TorchServe contract, one customer per request (batch dimension 1):
  in   PRODUCT_IDS INT32 [n]    every past order's product ids, oldest order first
       ORDER_LENGTHS INT32 [m]  products in each of the m orders (sums to n)
       K INT32 [1]              optional, default 10
       ORDER_DOW, ORDER_HOUR INT32 [m], DAYS_SINCE_PRIOR FP32 [m]   optional order context
       NEXT_ORDER FP32 [3]      optional (dow, hour, days since prior; -1/-1/NaN unknown)
       USER_ID INT32 [1]        optional, the customer's id (TIFU-KNN leaves them out)
  out  TOP_PRODUCT_IDS INT32 [k], TOP_SCORES FP32 [k]               the top-K ranking
       BASKET_PRODUCT_IDS INT32 [b]                                 the predicted basket
       UNKNOWN_PRODUCT_IDS INT32 [u]                                ids the model does not know
Triton's dynamic batcher hands `execute` several requests; they are scored in one
`Recommender.recommend` call, the call TorchServe and batch scoring make.
"""

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from basket.online import BadRequest, OnlineScorer, request_from_arrays  # noqa: E402
from basket.serving_config import RequestLimits  # noqa: E402


def _input(request, name: str, dtype):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().astype(dtype).ravel()


class TritonPythonModel:
    """Loads the winner once per model instance; answers batches of customers."""

    def initialize(self, args):
        self.scorer = OnlineScorer.from_model_dir(HERE / "model")
        # The archive's request limits, written into config.pbtxt by `basket package --triton`.
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.limits = RequestLimits.from_mapping(
            {key: value["string_value"] for key, value in parameters.items()}
        )

    def _parse(self, request):
        product_ids = _input(request, "PRODUCT_IDS", np.int64)
        lengths = _input(request, "ORDER_LENGTHS", np.int64)
        k = _input(request, "K", np.int64)
        k = self.limits.default_k if k is None else int(k[0])
        if not 1 <= k <= self.limits.max_k:
            raise BadRequest(f"K must be from 1 to {self.limits.max_k}, got {k}")
        if len(lengths) > self.limits.max_orders:
            raise BadRequest(f"{len(lengths)} orders; the limit is {self.limits.max_orders}", 413)
        if len(lengths) and int(lengths.max()) > self.limits.max_products_per_order:
            raise BadRequest(
                f"an order of {int(lengths.max())} products; the limit is "
                f"{self.limits.max_products_per_order}",
                413,
            )
        following = _input(request, "NEXT_ORDER", np.float64)
        user_id = _input(request, "USER_ID", np.int64)
        return request_from_arrays(
            product_ids,
            lengths,
            self.scorer.model.vocab,
            k,
            order_dow=_input(request, "ORDER_DOW", np.int64),
            order_hour=_input(request, "ORDER_HOUR", np.int64),
            days_since_prior=_input(request, "DAYS_SINCE_PRIOR", np.float32),
            next_context=(-1, -1, float("nan"))
            if following is None
            else (int(following[0]), int(following[1]), float(following[2])),
            user_id=None if user_id is None else int(user_id[0]),
        )

    def execute(self, requests):
        parsed = []
        for request in requests:
            try:
                parsed.append(self._parse(request))
            except BadRequest as error:
                parsed.append(error)
            except ValueError as error:  # e.g. tensors of mismatched shapes
                parsed.append(BadRequest(str(error)))
        answers = iter(
            self.scorer.answer_parsed([p for p in parsed if not isinstance(p, BadRequest)])
        )
        responses = []
        for item in parsed:
            if isinstance(item, BadRequest):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(item))))
                continue
            answer = next(answers)
            outputs = {
                "TOP_PRODUCT_IDS": np.array([answer["product_ids"]], np.int32),
                "TOP_SCORES": np.array([answer["scores"]], np.float32),
                "BASKET_PRODUCT_IDS": np.array([answer["basket_product_ids"]], np.int32),
                "UNKNOWN_PRODUCT_IDS": np.array([item.unknown], np.int32).reshape(1, -1),
            }
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(name, value) for name, value in outputs.items()]
                )
            )
        return responses
