"""The one registry of model kinds: the `kind` written in a model dir's model.json -> its class,
so `load_model` opens any winner, whichever kind it is."""

from __future__ import annotations

from pathlib import Path

from basket.models.model_meta import ModelMeta
from basket.models.neural import NeuralRecommender
from basket.models.tifu_knn import TifuKNN
from basket.models.top_freq import PTopFreq
from basket.models.xgb import XGBoostRecommender

MODEL_KINDS = {cls.kind: cls for cls in (NeuralRecommender, XGBoostRecommender, TifuKNN, PTopFreq)}


def load_model(model_dir: Path | str):
    """Open the model in `model_dir` (any kind) as a Recommender."""
    meta = ModelMeta.read(model_dir)
    kind = meta.kind
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"{meta.source}: unknown model kind {kind!r}; known: {sorted(MODEL_KINDS)}"
        )
    return MODEL_KINDS[kind].load(model_dir)
