"""The Dockerfile, checked without a Docker engine: hadolint, and the promises it makes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from basket.orchestration.dag_settings import DEFAULTS

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    out = subprocess.run(
        [str(hadolint), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_install_steps_are_the_makefiles():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(
        r"^\tPYTHON=\$\(PYTHON\) bash scripts/install\.sh \$\(VENV\) dev,celery,datasets$",
        makefile,
        re.M,
    )
    assert re.search(r"^\s+bash scripts/install\.sh /app/\.venv celery \\$", DOCKERFILE, re.M)
    # Nothing else installs Python packages in the image.
    assert len(re.findall(r"pip install", DOCKERFILE)) == 0


def stage(name: str) -> str:
    """The Dockerfile's text from `FROM ${BASE} AS name` to the next stage or the end."""
    return re.search(rf"^FROM \$\{{BASE\}} AS {name}$(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)[
        1
    ]


def test_image_serves_basket_mar_as_non_root_with_health_check_and_volume():
    # The public base by default; a local one (scripts/container_base.sh) as a build argument.
    assert re.search(r"^ARG BASE=python:3\.11-slim-bookworm$", DOCKERFILE, re.M)
    # TorchServe is the last stage, so the default target; Triton is `--target triton`.
    assert re.findall(r"^FROM \$\{BASE\} AS (\w+)$", DOCKERFILE, re.M) == ["triton", "torchserve"]
    torchserve = stage("torchserve")
    assert "openjdk-17-jre-headless" in torchserve
    for image in (torchserve, stage("triton")):
        assert re.search(r"^USER 1000:1000$", image, re.M)
        assert re.search(r'^VOLUME \["/app/model_store"\]$', image, re.M)
        assert re.search(r"^HEALTHCHECK ", image, re.M)
    assert re.search(
        r'HEALTHCHECK[^\n]*\n\s+CMD \["bash", "/app/scripts/container_healthcheck.sh"\]', torchserve
    )
    cmd = re.search(r"^CMD (\[.*\])$", torchserve, re.M).group(1)
    assert '"torchserve", "--start", "--foreground"' in cmd and '"basket.mar"' in cmd


def container_config() -> str:
    """The image's config.properties, made by the same script the Dockerfile runs."""
    assert (
        "RUN bash scripts/container_config.sh config.properties > config.container.properties"
        in DOCKERFILE
    )
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "container_config.sh"), str(REPO / "config.properties")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_the_image_is_secure_by_default():
    """Before: every API on 0.0.0.0, token authorization off and model registration on, so
    anyone reaching 8081 could load an archive (which runs code)."""
    config = container_config()
    settings = dict(re.findall(r"^(\w+)=(.*)$", config, re.M))
    assert settings["inference_address"] == "http://0.0.0.0:8080"
    assert settings["metrics_address"] == "http://0.0.0.0:8082"
    assert settings["management_address"] == "http://127.0.0.1:8081"
    assert "disable_token_authorization" not in settings  # TorchServe's default: on
    assert settings["enable_model_api"] == "false"
    assert settings["allowed_urls"] == "file:///app/model_store/.*"
    assert settings["model_store"] == "/app/model_store"
    assert re.search(r"^EXPOSE 8080 8082$", DOCKERFILE, re.M)  # management not published


@pytest.mark.slow
def test_a_torchserve_with_the_image_config_wants_keys_and_refuses_registration(
    xgb_run_dir, tmp_path
):
    """The real server, on the image's config (addresses moved to free loopback ports)."""
    from basket.serving.package import package
    from basket.serving.torchserve import http
    from basket.testing.torchserve_server import LocalTorchServe

    template = tmp_path / "config.container.properties"
    template.write_text(container_config())
    store = tmp_path / "store"
    store.mkdir()
    package(xgb_run_dir, store / "basket.mar")
    with LocalTorchServe(model_store=store, template=template, token_auth=True) as server:
        assert http("GET", f"{server.inference_url}/ping")[0] == 400  # no key
        assert http("GET", f"{server.inference_url}/ping", token=server.key("inference"))[0] == 200
        request = json.dumps([["Banana"]]).encode()
        status, answer = http(
            "POST", f"{server.inference_url}/predictions/basket", request,
            token=server.key("inference"),
        )  # fmt: skip
        assert status == 200 and answer["model_version"] == "xgboost-test-1"
        status, _ = http(
            "POST", f"{server.management_url}/models?url=basket.mar&model_name=other",
            token=server.key("management"),
        )  # fmt: skip
        assert status == 405  # the model API is off: nothing can be registered


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", ".git", "runs", "model_store", "airflow_home", "bench/out"} <= ignored


def test_the_compose_file_runs_the_image_with_settings_that_exist():
    """compose.yaml: every basket service is the image configured by environment only, each
    Airflow service runs components the cluster script knows, and every Variable it sets is a
    DAG setting (a misspelt one would silently fall back to the default)."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    script = (REPO / "scripts" / "airflow_cluster.sh").read_text()
    airflow = {
        name: s for name, s in services.items() if "airflow_cluster.sh" in str(s.get("command"))
    }
    assert set(airflow) == {"scheduler", "api-server", "worker-1", "worker-2"}
    components = {c for s in airflow.values() for c in s["command"][2:]}
    assert components == {"scheduler", "dag-processor", "triggerer", "api-server", "worker"}
    # Each is a `case` label of the script ("  scheduler | dag-processor | triggerer)").
    labels = {name for line in re.findall(r"^\s+([\w| -]+)\)", script, re.M)
              for name in line.replace(" ", "").split("|")}  # fmt: skip
    assert components <= labels
    for name in (*airflow, "model-server"):
        assert services[name]["image"] == "${BASKET_IMAGE:-basket}"
    variables = {key.removeprefix("AIRFLOW_VAR_BASKET_").lower()
                 for s in airflow.values() for key in s["environment"]
                 if key.startswith("AIRFLOW_VAR_BASKET_")}  # fmt: skip
    assert variables and variables <= set(DEFAULTS)
    assert (
        services["model-server"]["environment"]["BASKET_STORE_URL"]
        == (services["scheduler"]["environment"]["AIRFLOW_VAR_BASKET_STORE_URL"])
    )


def test_the_compose_file_has_no_default_secret():
    """Each secret of compose.yaml is required (`${NAME:?message}`): `up` refuses to start
    without it and names it, rather than running with a key anyone can read here."""
    text = (REPO / "compose.yaml").read_text()
    for secret in (
        "BASKET_JWT_SECRET",
        "BASKET_API_SECRET",
        "BASKET_FERNET_KEY",
        "POSTGRES_PASSWORD",
    ):
        uses = re.findall(rf"\$\{{{secret}(:?[-?=+])?([^}}]*)\}}", text)
        assert uses, secret
        for operator, message in uses:
            assert operator == ":?" and secret in message, (secret, operator, message)
