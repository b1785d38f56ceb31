"""The TorchServe handler in process, through TorchServe's own MockContext: what the worker
does with a batch, without starting a server."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from ts.torch_handler.unit_tests.test_utils.mock_context import MockContext

from basket.resources import shipped


def load_handler_class():
    spec = importlib.util.spec_from_file_location("basket_handler", shipped("basket_handler.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BasketHandler


class RecordingContext(MockContext):
    """MockContext plus the per-request calls the handler makes (headers, status, type)."""

    def __init__(self, model_dir, settings: dict, headers: dict | None = None):
        super().__init__(model_pt_file=None, model_dir=str(model_dir), model_file=None,
                         model_name="basket")  # fmt: skip
        self.model_yaml_config = {"basket": settings}
        self.headers = headers or {}
        self.statuses: dict[int, tuple[int, str]] = {}
        self.content_types: dict[int, str] = {}

    def get_request_header(self, idx, name):
        return self.headers.get((idx, name))

    def set_response_status(self, code, phrase, idx=0):
        self.statuses[idx] = (code, phrase)

    def set_response_content_type(self, idx, value):
        self.content_types[idx] = value


@pytest.fixture
def handler_and_context(xgb_run_dir):
    def make(settings: dict, headers: dict | None = None):
        context = RecordingContext(xgb_run_dir / "winner", settings, headers)
        handler = load_handler_class()()
        handler.initialize(context)
        return handler, context

    return make


def test_a_batch_gets_one_answer_per_request_with_its_own_status(handler_and_context):
    handler, context = handler_and_context({"max_k": 5, "torch_threads": 1})
    good = json.dumps({"orders": [["Banana"]], "k": 5}).encode()
    batch = [{"body": good}, {"body": json.dumps({"orders": [["Banana"]], "k": 6})},
             {"data": bytearray(good)}]  # fmt: skip
    answers = handler.handle(batch, context)
    assert len(answers) == 3
    assert answers[0] == answers[2] and len(answers[0]["product_ids"]) == 5
    assert context.statuses == {1: (400, "Bad Request")}  # the others stay 200
    assert "k must be an integer from 1 to 5" in answers[1]["message"]
    assert context.content_types == dict.fromkeys(range(3), "application/json")


def test_the_archive_settings_set_limits_and_threads(handler_and_context):
    before = torch.get_num_threads()
    try:
        handler, _ = handler_and_context({"max_orders": 2, "torch_threads": 1})
        assert handler.scorer.limits.max_orders == 2 and torch.get_num_threads() == 1
        assert handler.scorer.version == "xgboost-test-1"
    finally:
        torch.set_num_threads(before)


def test_a_body_torchserve_already_decoded_is_size_checked_by_its_header(handler_and_context):
    """TorchServe hands JSON bodies over decoded; the Content-Length header still counts."""
    handler, context = handler_and_context(
        {"max_body_bytes": 100}, headers={(0, "Content-Length"): "5000"}
    )
    answers = handler.handle([{"body": {"orders": [["Banana"]]}}], context)
    assert context.statuses == {0: (413, "Request Entity Too Large")}
    assert "the body is 5,000 bytes; the limit is 100" in answers[0]["message"]
