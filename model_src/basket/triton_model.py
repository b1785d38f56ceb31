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
import math
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from basket.data.vocab import Vocabulary  # noqa: E402
from basket.online import OnlineScorer  # noqa: E402
from basket.online_request import DEFAULT_GAP_DAYS, BadRequest, ParsedRequest  # noqa: E402
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
