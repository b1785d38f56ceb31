"""`basket train` end to end on tiny synthetic data, with a TOML config file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from basket.commands.cli import main
from basket.config.run import load_config

TINY = """
models = ["cnngru", "attentiongru"]
basket_thresholds = [0.4, 0.6]
[train]
epochs = 1
batch_size = 64
targets_per_user = 1
pos_weights = [5.0, 10.0]
[predictor]
order_hidden = 32
[embed]
epochs = 3
"""


def test_train_is_the_retrain_pipeline_for_the_neural_candidates(synth_dir, tmp_path, capsys):
    """`basket train` runs retrain's stages for CNNGRU and AttentionGRU beside P-TopFreq: one
    config.json, one place that tunes decoding (basket F1 on validation), refit models."""
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(TINY)
    run = tmp_path / "run"
    command = ["train", str(synth_dir), "--out", str(run), "--config", str(config_file)]
    assert main([*command, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].replace("(winner)", "").strip(" *") for line in out.splitlines()
            if line.startswith("| ")}  # fmt: skip
    assert {"p_topfreq", "cnngru", "attentiongru"} <= rows
    assert "winner:" in out and "_grid.png" in out
    for name in ("cnngru", "attentiongru"):
        grid = pd.read_csv(run / "grid" / f"{name}_grid.csv")
        assert grid["pos_weight"].tolist() == [5.0, 10.0] and grid["chosen"].sum() == 1
        assert (run / "grid" / f"{name}_grid.png").stat().st_size > 10_000
        meta = json.loads((run / "models" / name / "model.json").read_text())
        assert meta["pos_weight"] in (5.0, 10.0) and meta["fit"] == "refit"
        assert set(meta["decoding_on_validation"]) == {
            "threshold=0.4", "threshold=0.5", "threshold=0.6", "expected_f1",
        }  # fmt: skip
        assert len(meta["data_fingerprint"]) == 64 and meta["version"].startswith(name)
        assert {"recall@10", "recall_repeat@10", "recall_new@10"} <= set(meta["metrics"])
    report = json.loads((run / "report.json").read_text())
    assert set(report["candidates"]) == {"p_topfreq", "cnngru", "attentiongru"}
    assert set(report["tuned_candidates"]) == {"p_topfreq", "cnngru", "attentiongru"}
    assert "What the refit gained" in (run / "report.md").read_text()
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["config"]["train"]["device"] == "cpu"
    assert recorded["config"]["train"]["epochs"] == 1 and len(recorded["data_fingerprint"]) == 64
    assert pd.read_parquet(run / "embeddings.parquet").shape[1] == 65


def test_config_file_and_flags_override_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"train": {"epochs": 7}, "predictor": {"n_orders": 3}}')
    config = load_config(path, {"train": {"batch_size": 8}})
    assert config.train.epochs == 7 and config.train.batch_size == 8
    assert config.predictor.n_orders == 3 and config.predictor.order_hidden == 128


def test_unknown_setting_is_refused_by_name(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"train": {"epoch": 7}}')
    with pytest.raises(ValueError, match="unknown setting 'train.epoch'"):
        load_config(path)


def test_an_embedding_width_the_nets_cannot_read_is_refused_at_load(tmp_path):
    """The EV file's width (embed.dim) is what the nets' product vectors start from: changing
    one alone used to fail deep in training with a tensor shape error."""
    path = tmp_path / "c.toml"
    path.write_text("[embed]\ndim = 32\n")
    with pytest.raises(ValueError, match="predictor.embed_dim is 64 but embed.dim is 32"):
        load_config(path)
    both = load_config(path, {"predictor": {"embed_dim": 32}})
    assert both.embed.dim == both.predictor.embed_dim == 32
