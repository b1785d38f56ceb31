"""A task killed mid-way (SIGKILL, as when a worker host dies) leaves nothing half-written that
its retry or the next task would read, and the retry writes exactly what an uninterrupted run
writes: atomic folders and files, and deterministic stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import basket.models.xgb as xgb_module
from basket.config.run import load_config
from basket.io.atomic import atomic_dir
from basket.training.retrain import embed_stage, prepare_stage

TINY = {
    "train": {"epochs": 3, "batch_size": 32, "targets_per_user": 1, "pos_weights": [5.0]},
    "predictor": {"order_hidden": 32},
    "embed": {"epochs": 3},
}
TRAIN = """
import sys
from basket.config.run import load_config
from basket.training.retrain import train_stage
config = load_config(sys.argv[2])
print("ready", flush=True)
train_stage(sys.argv[1], ["cnngru"], config)
"""
SCORE = """
import sys
import basket.serving.batch as batch
batch.CHUNK_USERS = 4  # many small chunks, so the kill lands mid-file
print("ready", flush=True)
batch.score_users(sys.argv[1], sys.argv[2], sys.argv[3], shard=(0, 2))
"""


def python(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def kill_when(process: subprocess.Popen, ready, timeout_s: float = 120) -> None:
    """SIGKILL `process` once `ready()` holds; fail if it finished first (nothing was killed)."""
    assert process.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert process.poll() is None, "the process finished before it could be killed"
        assert time.monotonic() < deadline, "never reached the point to kill it"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


@pytest.fixture(scope="module")
def prepared_run(synth_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(run dir with RUN/prepared and the EV file, config path)."""
    run = tmp_path_factory.mktemp("killed_run")
    config_path = run / "tiny.json"
    config_path.write_text(json.dumps(TINY))
    config = load_config(config_path)
    prepare_stage(synth_dir, run, config)
    embed_stage(run, config)
    return run, config_path


@pytest.mark.slow
def test_a_training_task_killed_mid_way_and_retried_trains_the_same_model(prepared_run, tmp_path):
    run, config = prepared_run
    started = time.monotonic()
    kill_when(python(TRAIN, run, config), lambda: time.monotonic() - started > 4)
    assert not (run / "candidates" / "cnngru").exists()  # nothing half-written to read
    assert python(TRAIN, run, config).wait(timeout=300) == 0  # the retry

    clean = tmp_path / "clean"
    clean.mkdir()
    for name in ("prepared", "embeddings.parquet"):
        os.symlink(run / name, clean / name)
    assert python(TRAIN, clean, config).wait(timeout=300) == 0
    retried, uninterrupted = (
        torch.load(folder / "candidates" / "cnngru" / "weights.pt") for folder in (run, clean)
    )
    assert retried.keys() == uninterrupted.keys()
    assert all(torch.equal(retried[name], uninterrupted[name]) for name in retried)
    meta = [json.loads((f / "candidates/cnngru/model.json").read_text()) for f in (run, clean)]
    assert without_timings(meta[0]) == without_timings(meta[1])
    assert meta[0]["epochs"] and meta[0]["fit"] == "refit"


def without_timings(meta: dict) -> dict:
    """model.json less the wall-clock seconds it records (they differ between any two runs)."""
    epochs = [{k: v for k, v in row.items() if k != "seconds"} for row in meta["epochs"]]
    return {**{k: v for k, v in meta.items() if k != "refit_seconds"}, "epochs": epochs}


def test_a_shard_killed_mid_way_and_retried_writes_the_same_file(
    neural_model_dir, synth_dir, tmp_path
):
    out = tmp_path / "shards" / "part-00000.parquet"
    process = python(SCORE, neural_model_dir, synth_dir, out)
    kill_when(process, lambda: any(out.parent.glob(".part-00000.parquet.*")))
    assert not out.exists()
    assert python(SCORE, neural_model_dir, synth_dir, out).wait(timeout=120) == 0
    clean = tmp_path / "clean.parquet"
    assert python(SCORE, neural_model_dir, synth_dir, clean).wait(timeout=120) == 0
    assert out.read_bytes() == clean.read_bytes()


def test_a_model_save_that_dies_mid_way_leaves_no_model_dir(xgb_run_dir, monkeypatch, tmp_path):
    """Before: model.json was written before the weights, so a crash left a dir that looked
    complete and failed to load."""
    from basket.models.registry import load_model

    model = load_model(xgb_run_dir / "winner")

    def dies(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xgb_module.xgb.Booster, "save_model", dies)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "xgboost")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_killed_while_being_replaced_keeps_its_old_version(tmp_path):
    target = tmp_path / "winner"
    target.mkdir()
    (target / "model.json").write_text("old")
    writer = f"""
import time
from basket.io.atomic import atomic_dir
with atomic_dir({str(target)!r}) as staging:
    (staging / "model.json").write_text("new")
    print("ready", flush=True)
    time.sleep(60)
"""
    process = python(writer)
    kill_when(process, lambda: True)
    assert (target / "model.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["winner"]
    with atomic_dir(target) as staging:  # the retry
        (staging / "model.json").write_text("new")
    assert (target / "model.json").read_text() == "new"


def _record_many(args) -> None:
    from basket.training.retrain import _record_stage

    run_dir, worker = args
    for step in range(20):
        _record_stage(Path(run_dir), f"train_{worker}_{step}", time.perf_counter())


def test_stage_timings_recorded_by_parallel_tasks_are_all_kept(tmp_path):
    """Four training tasks run at once under a real executor; before, they read-modified-wrote
    one stage_seconds.json and lost each other's entries (or read it half-written)."""
    from multiprocessing import get_context

    from basket.training.retrain import stage_seconds

    with get_context("spawn").Pool(4) as pool:
        pool.map(_record_many, [(str(tmp_path), worker) for worker in range(4)])
    assert len(stage_seconds(tmp_path)) == 80


def test_atomic_writes_get_the_usual_permissions_not_private_ones(tmp_path):
    """A published basket.mar must be readable by a TorchServe running as another user."""
    from basket.io.atomic import atomic_file

    with atomic_file(tmp_path / "basket.mar") as temp:
        temp.write_bytes(b"archive")
    with atomic_dir(tmp_path / "model") as staging:
        (staging / "model.json").write_text("{}")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "basket.mar").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o777 & ~mask
