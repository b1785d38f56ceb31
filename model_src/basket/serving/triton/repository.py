"""A Triton model repository for the same winner `basket.mar` serves.

    DIR/basket/config.pbtxt     Python backend, dynamic batching, tensors of model.py
    DIR/basket/1/model.py       basket/serving/triton/model.py
    DIR/basket/1/model/         the winner's model dir, as in the .mar
    DIR/basket/1/basket/        this package's source, so the server runs the same code

The Python backend runs model.py in Triton's Python stub, which needs numpy,
pandas, pyarrow and the model's library (torch or xgboost) importable; see the
docs/serving.md for the virtual environment the tests use (nvidia-pytriton's server).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from basket.config.serving import RequestLimits, ServingConfig

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # basket/
# What the server never imports: bytecode, the training and orchestration layers, the CLI's
# commands, test harnesses, and the resources (links to the checkout's suites, handler and
# config, absent in the Triton image).
NOT_SERVED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "training", "orchestration", "commands", "testing", "resources"
)

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: {max_batch_size}
dynamic_batching {{
  max_queue_delay_microseconds: {max_queue_delay_us}
}}
input [
  {{ name: "PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "ORDER_LENGTHS" data_type: TYPE_INT32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "K" data_type: TYPE_INT32 dims: [ 1 ] optional: true }},
  {{ name: "ORDER_DOW" data_type: TYPE_INT32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "ORDER_HOUR" data_type: TYPE_INT32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "DAYS_SINCE_PRIOR" data_type: TYPE_FP32 dims: [ -1 ] optional: true allow_ragged_batch: true }},
  {{ name: "NEXT_ORDER" data_type: TYPE_FP32 dims: [ 3 ] optional: true }},
  {{ name: "USER_ID" data_type: TYPE_INT32 dims: [ 1 ] optional: true }},
  {{ name: "REQUEST_ONLY" data_type: TYPE_BOOL dims: [ 1 ] optional: true }}
]
output [
  {{ name: "TOP_PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] }},
  {{ name: "TOP_SCORES" data_type: TYPE_FP32 dims: [ -1 ] }},
  {{ name: "BASKET_PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] }},
  {{ name: "UNKNOWN_PRODUCT_IDS" data_type: TYPE_INT32 dims: [ -1 ] }},
  {{ name: "HISTORY" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "SNAPSHOT" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "FALLBACK" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "COMPUTED" data_type: TYPE_STRING dims: [ 1 ] }}
]
instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
{parameters}
"""


@dataclass(frozen=True)
class TritonConfig:
    """The Triton model's name, batching, instances and request limits: the same settings as
    the .mar's model-config.yaml (`from_serving`), with `ServingConfig`'s defaults."""

    name: str = ServingConfig.model_name
    max_batch_size: int = ServingConfig.batch_size
    max_queue_delay_us: int = ServingConfig.max_batch_delay_ms * 1000
    instances: int = ServingConfig.workers
    torch_threads: int = ServingConfig.torch_threads
    limits: RequestLimits = field(default_factory=RequestLimits)

    @classmethod
    def from_serving(cls, config: ServingConfig) -> TritonConfig:
        """The Triton settings of an archive's `ServingConfig`."""
        return cls(
            name=config.model_name, max_batch_size=config.batch_size,
            max_queue_delay_us=config.max_batch_delay_ms * 1000, instances=config.workers,
            torch_threads=config.torch_threads, limits=config.limits,
        )  # fmt: skip

    def pbtxt(self) -> str:
        """config.pbtxt; the limits and torch's threads go in as `parameters`, which model.py reads."""
        settings = {"torch_threads": self.torch_threads, **self.limits.as_dict()}
        parameters = "\n".join(
            f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}'
            for key, value in settings.items()
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
        shutil.copytree(PACKAGE_DIR, version / "basket", ignore=NOT_SERVED)
        shutil.copyfile(Path(__file__).with_name("model.py"), version / "model.py")
        (staging / "config.pbtxt").write_text(config.pbtxt())
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target
