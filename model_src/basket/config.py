"""Typed run configuration: defaults from the design, overridable from a JSON/TOML file and the CLI."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from basket.data.vocab import VocabConfig
from basket.embed import EmbedConfig
from basket.models.modules import PredictorConfig
from basket.models.tifu_knn import TifuConfig
from basket.models.xgb import XGBConfig


@dataclass(frozen=True)
class TrainConfig:
    """How the neural predictors are trained and tuned; defaults from the research plan."""

    batch_size: int = 16  # BATCH_SIZE
    epochs: int = 3  # EPOCHS
    learning_rate: float = 1e-3  # LEARNING_RATE
    weight_decay: float = 1e-4  # AdamW, decoupled
    grad_clip: float = 1.0  # max gradient norm
    patience: int = 2  # epochs without a validation gain before stopping early
    targets_per_user: int = 5  # cut points per user: more training examples from one history
    pos_weights: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    thresholds: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6)
    k: int = 10
    seed: int = 0
    threads: int = 2  # torch CPU threads


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on; saved beside its outputs."""

    models: tuple[str, ...] = ("cnngru", "attentiongru")
    vocab: VocabConfig = field(default_factory=VocabConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    xgboost: XGBConfig = field(default_factory=XGBConfig)
    tifu: TifuConfig = field(default_factory=TifuConfig)
    baselines: tuple[str, ...] = ("p_topfreq", "tifu_knn", "xgboost")
    # The metric the winner is chosen by, at the run's one k (`train.k`): "recall" -> recall@10.
    primary_metric: str = "recall"
    # Basket thresholds tried on validation for XGBoost and the baselines; the low end is for
    # TIFU-KNN, whose scores are decayed frequencies, not probabilities.
    basket_thresholds: tuple[float, ...] = (0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)

    @property
    def primary_key(self) -> str:
        """The primary metric at the run's k, as metrics are keyed: "recall@10"."""
        name, _, at = self.primary_metric.partition("@")
        if at and at != str(self.train.k):
            raise ValueError(
                f"primary_metric {self.primary_metric!r} is at k={at} but train.k is "
                f"{self.train.k}: a run has one k; give the metric name alone ({name!r})"
            )
        return f"{name}@{self.train.k}"


def _merge(instance: Any, overrides: dict[str, Any]) -> Any:
    """A copy of dataclass `instance` with `overrides` applied (nested dicts for nested configs)."""
    known = {f.name: f for f in fields(instance)}
    changes = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(
                f"unknown setting {key!r} for {type(instance).__name__}; known: {sorted(known)}"
            )
        current = getattr(instance, key)
        if is_dataclass(current):
            changes[key] = _merge(current, value)
        elif isinstance(current, tuple):
            changes[key] = tuple(value)
        else:
            changes[key] = value
    return replace(instance, **changes)


def load_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults, then the file (JSON or TOML) at `path`, then `overrides`."""
    config = RunConfig()
    if path is not None:
        path = Path(path)
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        config = _merge(config, data)
    return _merge(config, overrides or {})


def config_dict(config: RunConfig) -> dict[str, Any]:
    """The config as plain JSON-ready data."""
    return asdict(config)
