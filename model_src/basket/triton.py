"""A Triton model repository for the same winner `basket.mar` serves.

    DIR/basket/config.pbtxt     Python backend, dynamic batching, tensors of triton_model.py
    DIR/basket/1/model.py       basket/triton_model.py
    DIR/basket/1/model/         the winner's model dir, as in the .mar
    DIR/basket/1/basket/        this package's source, so the server runs the same code

The Python backend runs model.py in Triton's Python stub, which needs numpy,
pandas, pyarrow and the model's library (torch or xgboost) importable; see the
README for the virtual environment the tests use (nvidia-pytriton's server).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from basket.local_server import LocalServer
from basket.online import RequestLimits
from basket.torchserve import free_port, http

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: {max_batch_size}
dynamic_batching {{
  max_queue_delay_microseconds: {max_queue_delay_us}
}}
input [
  {{ name: "PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] allow_ragged_batch: true }},
  {{ name: "ORDER_LENGTHS" data_type: TYPE_INT32 dims: [ -1 ] allow_ragged_batch: true }},
  {{ name: "K" data_type: TYPE_INT32 dims: [ 1 ] optional: true }},
  {{ name: "ORDER_DOW" data_type: TYPE_INT32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "ORDER_HOUR" data_type: TYPE_INT32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "DAYS_SINCE_PRIOR" data_type: TYPE_FP32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "NEXT_ORDER" data_type: TYPE_FP32 dims: [ 3 ] optional: true }},
  {{ name: "USER_ID" data_type: TYPE_INT32 dims: [ 1 ] optional: true }}
]
output [
  {{ name: "TOP_PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] }},
  {{ name: "TOP_SCORES" data_type: TYPE_FP32 dims: [ -1 ] }},
  {{ name: "BASKET_PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] }},
  {{ name: "UNKNOWN_PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] }}
]
instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
{parameters}
"""


@dataclass(frozen=True)
class TritonConfig:
    """The Triton model's name, batching, instances and request limits (`basket package`
    fills them from the same settings as the .mar's model-config.yaml)."""

    name: str = "basket"
    max_batch_size: int = 8
    max_queue_delay_us: int = 5000
    instances: int = 2
    limits: RequestLimits = field(default_factory=RequestLimits)

    def pbtxt(self) -> str:
        """config.pbtxt; the limits go in as `parameters`, which model.py reads."""
        parameters = "\n".join(
            f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}'
            for key, value in self.limits.as_dict().items()
        )
        return CONFIG.format(
            name=self.name, max_batch_size=self.max_batch_size,
            max_queue_delay_us=self.max_queue_delay_us, instances=self.instances,
            parameters=parameters,
        )  # fmt: skip


def export_triton_repository(
    model_dir: Path | str, triton_dir: Path | str, config: TritonConfig | None = None
) -> Path:
    """Write the model repository for `model_dir` into `triton_dir` (replacing that model's
    folder as a whole: built beside it, then renamed). Returns DIR/NAME."""
    config = config or TritonConfig()
    triton_dir = Path(triton_dir)
    triton_dir.mkdir(parents=True, exist_ok=True)
    target = triton_dir / config.name
    staging = Path(tempfile.mkdtemp(prefix=f".{config.name}.", dir=triton_dir))
    try:
        version = staging / "1"
        shutil.copytree(model_dir, version / "model")
        shutil.copytree(
            PACKAGE_DIR, version / "basket", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        shutil.copyfile(PACKAGE_DIR / "triton_model.py", version / "model.py")
        (staging / "config.pbtxt").write_text(config.pbtxt())
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


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
