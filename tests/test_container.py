"""The image, built from the repo's Dockerfile and run for real with podman: health check,
a prediction with the inference key, a non-root server, the management API out of reach,
requests by customer id from the store in the volume, and a new basket.mar served after a
restart. `.ci/run` installs podman (Debian's podman, runc, debootstrap); under CI a missing
podman fails these tests instead of skipping them."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from basket.serving.online import OnlineScorer
from basket.serving.package import package_mar
from basket.serving.store.connect import open_store
from basket.serving.store.fill import load_snapshot
from basket.serving.torchserve import http
from basket.serving.triton.client import v2_json
from basket.testing.local_server import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
# runc: crun refuses this host's cgroups; explicit ulimits: podman's defaults are refused here.
PODMAN = ["podman", "--runtime", "/usr/sbin/runc"]
LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
REQUEST = [[1, 2, 3], [2, 3, 4], [3]]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """One podman command (runc, as the image fixture builds with)."""
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, check=check,
                          timeout=timeout)  # fmt: skip


@pytest.fixture
def model_store(xgb_run_dir, synth_dir, tmp_path) -> Path:
    """A model store volume as the nightly DAG leaves it: basket.mar and histories.sqlite,
    written by root, readable by the image's user."""
    store = tmp_path / "model_store"
    package_mar(xgb_run_dir / "winner", store / "basket.mar")
    load_snapshot(synth_dir, f"sqlite:///{store / 'histories.sqlite'}")
    for path in (tmp_path, store, *store.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return store


class Container:
    """One `podman run` of an image with the model store mounted and `ports` published."""

    def __init__(self, image: str, model_store: Path, ports=(8080, 8081, 8082)):
        self.name = f"basket-test-{uuid.uuid4().hex[:8]}"
        self.ports = {port: free_port() for port in ports}
        self.image, self.model_store = image, model_store

    def start(self) -> float:
        """Run the container; seconds from `run` to its first answer."""
        published = [arg for inner, outer in self.ports.items()
                     for arg in ("-p", f"127.0.0.1:{outer}:{inner}")]  # fmt: skip
        started = time.perf_counter()
        podman("run", "-d", "--init", "--name", self.name, *LIMITS, *published,
               "-v", f"{self.model_store}:/app/model_store", self.image)  # fmt: skip
        self.wait_healthy()
        return time.perf_counter() - started

    def wait_healthy(self, timeout_s: float = 300) -> None:
        """Until the image's own HEALTHCHECK passes (podman runs it on request here: there is
        no systemd to schedule it) and a prediction is answered."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if podman("healthcheck", "run", self.name, check=False).returncode == 0:
                status, _ = self.predict(REQUEST)
                if status == 200:
                    return
            time.sleep(1)
        logs = podman("logs", self.name, check=False).stdout[-3000:]
        raise TimeoutError(f"{self.name} not healthy in {timeout_s}s:\n{logs}")

    def key(self) -> str:
        out = podman("exec", self.name, "cat", "key_file.json")
        return json.loads(out.stdout)["inference"]["key"]

    def predict(self, body, token: str | None = "auto"):
        token = self.key() if token == "auto" else token
        url = f"http://127.0.0.1:{self.ports[8080]}/predictions/basket"
        return http("POST", url, json.dumps(body).encode(), timeout=30, token=token)

    def stop(self) -> None:
        podman("rm", "-f", self.name, check=False)


class TritonContainer(Container):
    """The Triton image: KServe-v2 JSON on :8000, answers as the JSON contract's fields."""

    def __init__(self, image: str, model_store: Path):
        super().__init__(image, model_store, ports=(8000, 8002))

    def predict(self, body, token: str | None = "auto"):
        token = self.key() if token == "auto" else token
        body = {"orders": body} if isinstance(body, list) else body
        url = f"http://127.0.0.1:{self.ports[8000]}/v2/models/basket/infer"
        status, answer = http("POST", url, v2_json(body).encode(), timeout=30, token=token)
        if status != 200:
            return status, answer
        outputs = {out["name"]: out["data"] for out in answer["outputs"]}
        return status, {"product_ids": outputs["TOP_PRODUCT_IDS"],
                        "history": outputs["HISTORY"][0]}  # fmt: skip


def test_the_image_answers_with_its_key_as_non_root_and_keeps_management_inside(image, model_store):
    container = Container(image["name"], model_store)
    try:
        seconds = container.start()
        print(f"run to first answer: {seconds:.1f} s; image {image['size_bytes'] / 2**20:.0f} MiB")
        status, answer = container.predict(REQUEST)
        assert status == 200 and answer["model_version"] == "xgboost-test-1", answer
        assert len(answer["products"]) == 10
        assert container.predict(REQUEST, token=None)[0] in (400, 401)
        status, by_id = container.predict({"user_id": 1})
        assert status == 200 and by_id["history"] == "store", by_id
        assert podman("exec", container.name, "id", "-u").stdout.strip() == "1000"
        owner = podman("exec", container.name, "stat", "-c", "%u", "key_file.json").stdout
        assert owner.strip() == "1000"  # the server process wrote it: it runs as uid 1000
        with pytest.raises(OSError):  # published, but it listens on the container's loopback
            http("GET", f"http://127.0.0.1:{container.ports[8081]}/models", timeout=5)
    finally:
        container.stop()


def test_a_new_basket_mar_in_the_volume_is_served_after_a_restart(
    image, model_store, neural_model_dir
):
    container = Container(image["name"], model_store)
    try:
        container.start()
        assert container.predict(REQUEST)[1]["model_version"] == "xgboost-test-1"
        staged = package_mar(neural_model_dir, model_store / ".basket.mar.new")
        staged.chmod(0o644)
        staged.rename(model_store / "basket.mar")  # as `publish` promotes: one rename
        podman("restart", container.name, timeout=180)
        container.wait_healthy()
        status, answer = container.predict(REQUEST)
        assert status == 200 and answer["model_version"] == "attentiongru-test-1", answer
    finally:
        container.stop()


def test_the_triton_image_serves_the_same_archive_and_store_with_its_key(
    triton_image, model_store, xgb_run_dir
):
    """The `triton` target on the same volume: it exports the volume's basket.mar with the
    archive's settings at start, answers `{"user_id": 1}` from the volume's store as the
    model does in process, wants the key for inference and the repository API, runs as 1000."""
    container = TritonContainer(triton_image["name"], model_store)
    url = f"sqlite:///{model_store / 'histories.sqlite'}"
    expected = OnlineScorer.from_model_dir(xgb_run_dir / "winner", store=open_store(url))
    [(_, wanted)] = expected.answer_batch([{"user_id": 1}])
    try:
        seconds = container.start()
        print(
            f"triton: run to first answer {seconds:.1f} s; {triton_image['size_bytes'] / 2**20:.0f} MiB"
        )
        status, answer = container.predict({"user_id": 1})
        assert status == 200 and answer == {
            "product_ids": wanted["product_ids"],
            "history": "store",
        }
        assert container.predict({"user_id": 1}, token=None)[0] == 403
        assert container.predict({"user_id": 1}, token="wrong")[0] == 403
        index = f"http://127.0.0.1:{container.ports[8000]}/v2/repository/index"
        assert http("POST", index, b"{}", timeout=10)[0] == 403
        assert podman("exec", container.name, "id", "-u").stdout.strip() == "1000"
    finally:
        container.stop()
