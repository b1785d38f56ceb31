"""The Dockerfile, checked without a Docker engine: hadolint, and the promises it makes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
        r"^\tPYTHON=\$\(PYTHON\) bash scripts/install\.sh \$\(VENV\) dev,celery$", makefile, re.M
    )
    assert re.search(r"^RUN bash scripts/install\.sh /app/\.venv$", DOCKERFILE, re.M)
    # Nothing else installs Python packages in the image.
    assert len(re.findall(r"pip install", DOCKERFILE)) == 0


def test_image_serves_basket_mar_as_non_root_with_health_check_and_volume():
    assert re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.M)
    assert "openjdk-17-jre-headless" in DOCKERFILE
    assert re.search(r"^USER 1000:1000$", DOCKERFILE, re.M)
    assert re.search(r"^EXPOSE 8080 8081 8082$", DOCKERFILE, re.M)
    assert re.search(
        r'HEALTHCHECK[^\n]*\n\s+CMD \["curl", "-fsS", "http://127\.0\.0\.1:8080/ping"\]', DOCKERFILE
    )
    assert re.search(r'^VOLUME \["/app/model_store"\]$', DOCKERFILE, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1)
    assert '"torchserve", "--start", "--foreground"' in cmd and '"basket.mar"' in cmd


def test_container_config_binds_every_api_to_all_interfaces():
    """The image rewrites the repo's config.properties with this sed: it must catch all three."""
    sed = re.search(r"RUN sed '(s#=http://127\.0\.0\.1:#=http://0\.0\.0\.0:#)'", DOCKERFILE)
    assert sed
    out = subprocess.run(
        ["sed", sed.group(1), str(REPO / "config.properties")], capture_output=True, text=True
    ).stdout
    addresses = dict(re.findall(r"^(\w+_address)=(\S+)$", out, re.M))
    assert set(addresses) == {"inference_address", "management_address", "metrics_address"}
    assert all(url.startswith("http://0.0.0.0:") for url in addresses.values())
    assert "model_store=model_store" in out


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", ".git", "runs", "model_store", "airflow_home", "bench/out"} <= ignored
