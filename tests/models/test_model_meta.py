"""model.json read in one place: clear errors naming the file, one set of defaults."""

from __future__ import annotations

import json

import pytest

from basket.models.model_meta import UNVERSIONED, ModelMeta
from basket.models.registry import load_model


def test_defaults_are_defined_once(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"kind": "p_topfreq", "threshold": 0.2}))
    meta = ModelMeta.read(tmp_path)
    assert (meta.kind, meta.version, meta.decoding, meta.fit, meta.name) == (
        "p_topfreq", UNVERSIONED, "threshold", "tuned", None,
    )  # fmt: skip
    assert meta.threshold == 0.2


def test_a_missing_or_broken_model_json_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json is missing"):
        ModelMeta.read(tmp_path)
    with pytest.raises(FileNotFoundError, match="model.json is missing"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model\.json is not JSON"):
        ModelMeta.read(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"threshold": 0.2}))
    with pytest.raises(ValueError, match="does not name the model's kind"):
        ModelMeta.read(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"kind": "p_topfreq"}))
    with pytest.raises(KeyError, match="has no 'config'"):
        ModelMeta.read(tmp_path)["config"]
    (tmp_path / "model.json").write_text(json.dumps({"kind": "mystery"}))
    with pytest.raises(ValueError, match="unknown model kind 'mystery'"):
        load_model(tmp_path)
