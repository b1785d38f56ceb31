"""The HTTP contract, docs/reference/openapi.yaml, is a valid OpenAPI 3.1 document, and a real
TorchServe keeps to it: every answer and every error it gives conforms to the document, and
schemathesis, generating requests from it, gets no 5xx and nothing off the document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_spec

from basket.commands.cli import main
from basket.config.serving import RequestLimits
from basket.data import build_histories, load_tables
from basket.serving.store.base import STORE_URL_ENV
from basket.serving.store.fill import load_snapshot
from basket.serving.torchserve import http
from basket.testing.torchserve_server import LocalTorchServe

SPEC_PATH = Path(__file__).resolve().parents[1] / "docs" / "reference" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
PREDICT = SPEC["paths"]["/predictions/basket"]["post"]


def conforms(status: int, body) -> None:
    """Raise unless `status` is documented for predictions and `body` fits its schema."""
    assert str(status) in PREDICT["responses"], f"undocumented status {status}: {body}"
    schema = PREDICT["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": SPEC["components"]})


def request_conforms(body) -> None:
    schema = PREDICT["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": SPEC["components"]})


def test_the_document_is_valid_openapi_and_its_examples_fit_it():
    validate_spec(SPEC)
    for example in PREDICT["requestBody"]["content"]["application/json"]["examples"].values():
        request_conforms(example["value"])
    for status, response in PREDICT["responses"].items():
        content = response["content"]["application/json"]
        if "example" in content:
            conforms(int(status), content["example"])


def test_the_documented_limits_are_the_servers_defaults():
    schemas, limits = SPEC["components"]["schemas"], RequestLimits()
    assert schemas["Orders"]["maxItems"] == limits.max_orders
    assert schemas["Items"]["maxItems"] == limits.max_products_per_order
    assert schemas["Item"]["oneOf"][0]["maxLength"] == limits.max_name_length
    assert schemas["RequestObject"]["properties"]["k"]["maximum"] == limits.max_k


@pytest.fixture(scope="module")
def server(xgb_run_dir, tmp_path_factory):
    """TorchServe on the XGBoost test winner, with a history store not loaded yet."""
    store = tmp_path_factory.mktemp("model_store")
    assert main(["package", str(xgb_run_dir), "--out", str(store / "basket.mar")]) == 0
    url = f"sqlite:///{store / 'histories.sqlite'}"
    with LocalTorchServe(model_store=store, env={STORE_URL_ENV: url}) as running:
        running.store_url = url
        yield running


def predict(server, body) -> tuple[int, object]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http("POST", f"{server.inference_url}/predictions/basket", raw)


@pytest.mark.slow
def test_a_request_by_id_before_the_store_is_loaded_is_a_documented_503(server):
    status, body = predict(server, {"user_id": 1})
    assert status == 503
    conforms(status, body)


@pytest.fixture(scope="module")
def stored(server, synth_dir):
    load_snapshot(synth_dir, server.store_url)
    return server


@pytest.mark.slow
def test_every_answer_and_error_of_a_real_torchserve_conforms(stored, synth_dir):
    histories = build_histories(load_tables(synth_dir))
    user = int(histories.user_ids[0])
    limits = RequestLimits()
    answers = {
        "names and ids": [["Banana", 2], ["Organic Strawberries"]],
        "object with context": {
            "orders": [{"products": [1, 2], "order_dow": 1, "order_hour_of_day": 9}],
            "k": 3, "next_order": {"order_dow": 2},
        },
        "by id": {"user_id": user},
        "by id with new orders": {"user_id": user, "orders": [[1, 3]]},
        "request only": {"user_id": user, "orders": [[1]], "history": "request"},
        "unknown customer": {"user_id": 2**31 - 1},
        "no orders": [],
        "unknown names": [["no such product", "12"]],
    }  # fmt: skip
    errors = {
        "not JSON": (b"{nope", 400),
        "k out of range": ({"orders": [[1]], "k": 0}, 400),
        "unknown field": ({"orders": [[1]], "colour": "red"}, 400),
        "bad item": ([[1.5]], 400),
        "bad context": ({"orders": [{"products": [1], "order_dow": 9}]}, 400),
        "too many orders": ([[1]] * (limits.max_orders + 1), 413),
        "too long a name": ([["x" * (limits.max_name_length + 1)]], 413),
    }
    for name, body in answers.items():
        request_conforms(body)
        status, answer = predict(stored, body)
        assert status == 200, (name, answer)
        conforms(status, answer)
    for name, (body, expected) in errors.items():
        status, error = predict(stored, body)
        assert status == expected, (name, error)
        conforms(status, error)
    assert predict(stored, {"user_id": user})[1]["history"] == "store"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_nothing_off_the_document(stored, tmp_path):
    """Requests generated from the document, valid and invalid, bounded in count and time:
    no 5xx, every status documented, every answer of its documented shape."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")), "run", str(SPEC_PATH),
            "--url", stored.inference_url,
            "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "30", "--max-time", "20", "--seed", "7",
            "--workers", "2", "--request-timeout", "10",
            "--generation-database", "none", "--no-color",
            "--report", "json", "--report-json-path", str(report),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout, done.stdout[-3000:]
    assert json.loads(report.read_text())  # the run wrote its report: it ran
