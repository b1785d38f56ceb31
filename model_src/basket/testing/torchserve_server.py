"""A real TorchServe on free loopback ports, for tests and benchmarks.

`LocalTorchServe` starts `torchserve` with the repo's config.properties (or another
template), rewritten to free loopback ports and a given model store, waits until
every model answers, and stops it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from basket.resources import shipped
from basket.serving.torchserve import http
from basket.testing.local_server import LocalServer, free_port

REPO_CONFIG = shipped("config.properties")


def server_config(
    template: Path, ports: dict[str, int], model_store: Path, grpc_ports: dict[str, int]
) -> str:
    """`template` (a config.properties) with loopback `ports`, `model_store` and the gRPC
    ports (TorchServe always opens 7070/7071 otherwise, so two servers would clash)."""
    text = template.read_text()
    for key, port in ports.items():
        text = re.sub(rf"(?m)^{key}=.*$", f"{key}=http://127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^model_store=.*$", f"model_store={model_store}", text)
    return text + "".join(f"\n{key}={port}" for key, port in grpc_ports.items()) + "\n"


@dataclass
class LocalTorchServe(LocalServer):
    """A real TorchServe on free ports serving `models` (names of archives in `model_store`)."""

    model_store: Path
    models: str = "basket=basket.mar"
    workdir: Path | None = None
    template: Path = REPO_CONFIG
    start_timeout_s: float = 180.0
    # TorchServe's default, and what production should run: keys in WORKDIR/key_file.json.
    token_auth: bool = False
    # Extra environment for the server and its workers (e.g. BASKET_STORE_URL).
    env: dict | None = None

    name = "torchserve"

    def __post_init__(self):
        self.ports = {
            "inference_address": free_port(),
            "management_address": free_port(),
            "metrics_address": free_port(),
        }
        self.grpc_ports = {"grpc_inference_port": free_port(), "grpc_management_port": free_port()}
        self._own_workdir = self.workdir is None
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="basket-torchserve-"))
        self.process = None

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['inference_address']}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['management_address']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics_address']}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "torchserve.out"

    def _env(self) -> dict:
        # Its own TMPDIR: TorchServe keeps one pid file there and refuses a second server.
        # The interpreter's bin folder first: workers must run the Python that has `basket`.
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {
            **os.environ,
            **(self.env or {}),
            "PATH": path,
            "TMPDIR": str(self.workdir / "tmp"),
            # TEMP becomes the frontend's java.io.tmpdir, where the worker sockets live
            # (/tmp/.ts.sock.9000, ... otherwise: the same names for every server).
            "TEMP": str(self.workdir / "tmp"),
            # TS_CONFIG_FILE wins over --ts-config in TorchServe's launcher.
            "TS_CONFIG_FILE": str(self.workdir / "config.properties"),
        }

    def start(self) -> LocalTorchServe:
        """Start the server and wait until every model in `models` answers /ping healthy."""
        if shutil.which("torchserve", path=self._env()["PATH"]) is None:
            raise FileNotFoundError("torchserve is not installed beside this Python or on PATH")
        config = self.workdir / "config.properties"
        text = server_config(
            self.template, self.ports, Path(self.model_store).resolve(), self.grpc_ports
        )
        if self.token_auth:
            text = re.sub(r"(?m)^disable_token_authorization=.*$", "", text)
        config.write_text(text)
        command = [
            shutil.which("torchserve", path=self._env()["PATH"]),
            "--start",
            "--foreground",
            "--ncs",
            "--ts-config",
            str(config),
        ]
        command += ["--models", self.models]
        self.launch(command, self._env(), cwd=self.workdir)
        names = [entry.split("=")[0] for entry in self.models.split(",") if entry]
        self.wait_until(
            lambda: (
                (not self.token_auth or self._keys_written())
                and http(
                    "GET", f"{self.inference_url}/ping", timeout=2, token=self.key("inference")
                )[0]
                == 200
                and all(self._workers_ready(name) for name in names)
            )
        )
        return self

    def key(self, api: str) -> str | None:
        """The server's key for `api` ("inference", "management"), None without token auth."""
        if not self.token_auth:
            return None
        keys = json.loads((self.workdir / "key_file.json").read_text())
        return keys[api]["key"]

    def _keys_written(self) -> bool:
        """Whether TorchServe has finished writing key_file.json (it exists before it is whole)."""
        try:
            self.key("inference")
        except (OSError, ValueError, KeyError):
            return False
        return True

    def _workers_ready(self, name: str) -> bool:
        status, body = http(
            "GET", f"{self.management_url}/models/{name}", timeout=2, token=self.key("management")
        )
        if status != 200 or not isinstance(body, list):
            return False
        workers = [w for model in body for w in model.get("workers", [])]
        return any(worker.get("status") == "READY" for worker in workers)

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's console and model log."""
        model_log = self.workdir / "logs" / "model_log.log"
        model = model_log.read_text(errors="replace") if model_log.exists() else ""
        return "\n".join([super().log_tail(lines), *model.splitlines()[-lines:]])

    def stop(self) -> None:
        """Stop the server (and its Java frontend and Python workers)."""
        self.end_process(
            lambda: subprocess.run(
                [shutil.which("torchserve", path=self._env()["PATH"]), "--stop"],
                env=self._env(),
                capture_output=True,
                timeout=60,
            )  # fmt: skip
        )
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
