"""`basket train` end to end on tiny synthetic data, with a TOML config file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from basket.cli import main
from basket.config import load_config

TINY = """
models = ["cnngru", "attentiongru"]
[train]
epochs = 1
batch_size = 64
targets_per_user = 1
pos_weights = [5.0, 10.0]
thresholds = [0.4, 0.6]
[predictor]
order_hidden = 32
[embed]
epochs = 3
"""


def test_train_writes_models_grids_plots_and_report(synth_dir, tmp_path, capsys):
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", str(synth_dir), "--out", str(run), "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "| p_topfreq |" in out and "| cnngru |" in out and "| attentiongru |" in out
    for name in ("cnngru", "attentiongru"):
        grid = pd.read_csv(run / "grid" / f"{name}_grid.csv")
        assert len(grid) == 4 and grid["chosen"].sum() == 1
        assert (run / "grid" / f"{name}_grid.png").stat().st_size > 10_000
        meta = json.loads((run / "models" / name / "model.json").read_text())
        assert meta["pos_weight"] in (5.0, 10.0) and meta["threshold"] in (0.4, 0.6)
        assert len(meta["data_fingerprint"]) == 64 and meta["version"].startswith(name)
        assert {"recall@10", "recall_repeat@10", "recall_new@10"} <= set(meta["metrics"])
    report = json.loads((run / "train_report.json").read_text())
    assert set(report["candidates"]) == {"p_topfreq", "cnngru", "attentiongru"}
    recorded = json.loads((run / "config.json").read_text())
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
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        load_config(path)
