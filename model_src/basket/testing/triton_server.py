"""NVIDIA's tritonserver (from the nvidia-pytriton wheel, in .venv-triton) on free loopback
ports, serving a `basket package --triton` repository: for tests and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from basket.serving.torchserve import http
from basket.testing.local_server import LocalServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def triton_venv_paths(venv: Path) -> dict[str, Path]:
    """Where the pieces of the Triton environment (scripts/triton_env.sh) are."""
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        raise FileNotFoundError(f"{venv} is not a Triton environment; run scripts/triton_env.sh")
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib']);"
         "print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    site, libdir = Path(out[0]), Path(out[1])
    server = site / "pytriton" / "tritonserver"
    return {"python": python, "site": site, "libdir": libdir, "server": server}


@dataclass
class LocalTriton(LocalServer):
    """NVIDIA's tritonserver (from the nvidia-pytriton wheel) on free loopback ports, serving
    `repository`, run from the Triton environment `venv`."""

    repository: Path
    venv: Path = REPO_ROOT / ".venv-triton"
    start_timeout_s: float = 180.0
    # Extra environment for the server and its Python backend stubs (e.g. BASKET_STORE_URL).
    env: dict | None = None

    name = "tritonserver"

    def __post_init__(self):
        self.ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
        self.process = None
        self.log_path = Path(tempfile.mkstemp(prefix="basket-triton-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.ports['http']}"

    def start(self) -> LocalTriton:
        """Start the server; wait until every model in the repository is ready."""
        paths = triton_venv_paths(self.venv)
        server = paths["server"]
        env = {
            **os.environ,
            **(self.env or {}),
            # The backend stub embeds libpython: it needs the interpreter's own libdir (a pyenv
            # Python otherwise picks up the system's) and the environment's site-packages.
            "LD_LIBRARY_PATH": os.pathsep.join(
                [str(paths["site"] / "nvidia_pytriton.libs"), str(paths["libdir"])]
            ),
            "PYTHONPATH": str(paths["site"]),
            "PATH": os.pathsep.join([str(self.venv / "bin"), os.environ.get("PATH", "")]),
        }
        command = [
            str(server / "bin" / "tritonserver"),
            f"--model-repository={Path(self.repository).resolve()}",
            f"--backend-directory={server / 'backends'}",
            f"--cache-directory={server / 'caches'}",
            f"--http-port={self.ports['http']}",
            f"--grpc-port={self.ports['grpc']}",
            f"--metrics-port={self.ports['metrics']}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
        ]
        self.launch(command, env)
        self.wait_until(
            lambda: http("GET", f"http://{self.url}/v2/health/ready", timeout=2)[0] == 200
        )
        return self

    def ask(self, requests: list[dict], model: str = "basket") -> list[dict]:
        """Answers to `requests` (JSON bodies) from model `model`, through tritonclient run in
        the Triton environment (`basket.serving.triton.client`)."""
        out = subprocess.run(
            [
                str(self.venv / "bin" / "python"),
                "-m",
                "basket.serving.triton.client",
                self.url,
                model,
            ],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "model_src")},
            check=True,
        )
        return json.loads(out.stdout)
