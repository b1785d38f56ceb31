"""A tritonclient front end for the exported Triton model: online requests in, answers out.

Runs in the Triton environment (scripts/triton_env.sh), where `tritonclient` is:

    PYTHONPATH=model_src .venv-triton/bin/python -m basket.serving.triton.client 127.0.0.1:8000 [MODEL] < requests.json

reads a JSON list of requests in the object form of the TorchServe contract
(`basket.serving.online.history_request` writes them: orders of product ids with their
context, `next_order`, `k`, `user_id`; `{"user_id": 42}` alone asks the server's
history store), sends them concurrently (so Triton batches them) and prints a JSON
list of {"product_ids", "scores", "basket_product_ids", "unknown_product_ids",
"history", "snapshot", "fallback"} or {"error": message, "status": HTTP status}.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np


def request_tensors(request: dict) -> dict[str, np.ndarray]:
    """The model's input tensors (batch dimension 1) for one request object."""
    orders = [o if isinstance(o, dict) else {"products": o} for o in request.get("orders", [])]
    products = [p for order in orders for p in order["products"]]

    def per_order(key: str, missing, dtype):
        values = [missing if order.get(key) is None else order[key] for order in orders]
        return np.array([values], dtype)

    following = request.get("next_order") or {}
    customer = (
        {}
        if request.get("user_id") is None
        else {"USER_ID": np.array([[request["user_id"]]], np.int32)}
    )
    if request.get("history") == "request":
        customer["REQUEST_ONLY"] = np.array([[True]], bool)
    # A request naming only its customer sends no order tensors (Triton takes no empty ones).
    history = (
        {
            "PRODUCT_IDS": np.array([products], np.int32),
            "ORDER_LENGTHS": np.array([[len(order["products"]) for order in orders]], np.int32),
            "ORDER_DOW": per_order("order_dow", -1, np.int32),
            "ORDER_HOUR": per_order("order_hour_of_day", -1, np.int32),
            "DAYS_SINCE_PRIOR": per_order("days_since_prior_order", math.nan, np.float32),
        }
        if orders
        else {}
    )
    return {
        **customer,
        **history,
        "K": np.array([[request.get("k", 10)]], np.int32),
        "NEXT_ORDER": np.array(
            [
                [
                    _or(following.get("order_dow"), -1),
                    _or(following.get("order_hour_of_day"), -1),
                    _or(following.get("days_since_prior_order"), math.nan),
                ]
            ],
            np.float32,
        ),  # fmt: skip
    }


def v2_json(request: dict) -> str:
    """The KServe-v2 JSON body (POST /v2/models/MODEL/infer) of one request object, for
    clients without tritonclient (curl, wrk); unknown context travels as NaN, which Triton reads."""
    inputs = [
        {"name": name, "shape": list(value.shape), "datatype": _triton_type(value),
         "data": value.ravel().tolist()}
        for name, value in request_tensors(request).items()
    ]  # fmt: skip
    return json.dumps({"inputs": inputs})


def _or(value, default):
    return default if value is None else value


def infer(url: str, requests: list[dict], model: str = "basket") -> list[dict]:
    """Send `requests` to the Triton server at `url` concurrently; one answer per request."""
    # Lazy: tritonclient is installed only in .venv-triton (scripts/triton_env.sh), not by basket.
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(url, concurrency=8)
    outputs = [httpclient.InferRequestedOutput(name) for name in ANSWER]
    pending = []
    for request in requests:
        inputs = []
        for name, value in request_tensors(request).items():
            tensor = httpclient.InferInput(name, list(value.shape), _triton_type(value))
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        pending.append(client.async_infer(model, inputs, outputs=outputs))
    answers = []
    for job in pending:
        try:
            result = job.get_result()
        except InferenceServerException as error:
            answers.append({"error": error.message(), "status": int(error.status() or 0)})
            continue
        answer = {key: result.as_numpy(name)[0].tolist() for name, key in ANSWER.items()}
        for key in TEXT_ANSWER:
            answer[key] = answer[key][0].decode() or None
        answers.append(answer)
    client.close()
    return answers


# Output tensor -> answer key; the text ones are decoded, "" meaning none.
ANSWER = {
    "TOP_PRODUCT_IDS": "product_ids",
    "TOP_SCORES": "scores",
    "BASKET_PRODUCT_IDS": "basket_product_ids",
    "UNKNOWN_PRODUCT_IDS": "unknown_product_ids",
    "HISTORY": "history",
    "SNAPSHOT": "snapshot",
    "FALLBACK": "fallback",
    "COMPUTED": "computed",
}
TEXT_ANSWER = ("history", "snapshot", "fallback", "computed")


def _triton_type(value: np.ndarray) -> str:
    return {np.dtype(np.int32): "INT32", np.dtype(np.float32): "FP32", np.dtype(bool): "BOOL"}[
        value.dtype
    ]


if __name__ == "__main__":
    # python -m basket.serving.triton.client URL [MODEL] < requests.json
    print(json.dumps(infer(sys.argv[1], json.load(sys.stdin), *sys.argv[2:3])))
