"""The one registry of model kinds: the `kind` written in a model dir's model.json -> its class,
so `load_model` opens any winner, whichever kind it is. The classes are the candidate table's
(`basket.config.candidates.TABLE`): a new candidate's model class is registered by its entry."""

from __future__ import annotations

from pathlib import Path

from basket.config.candidates import TABLE
from basket.models.model_meta import ModelMeta

MODEL_KINDS = {cls.kind: cls for cls in (candidate.model_class() for candidate in TABLE)}


def load_model(model_dir: Path | str):
    """Open the model in `model_dir` (any kind) as a Recommender."""
    meta = ModelMeta.read(model_dir)
    kind = meta.kind
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"{meta.source}: unknown model kind {kind!r}; known: {sorted(MODEL_KINDS)}"
        )
    return MODEL_KINDS[kind].load(model_dir)
