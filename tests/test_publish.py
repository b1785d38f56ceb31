"""Publishing into a model store: one atomic promotion, registration apart, pinned batch runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pandas as pd
import pytest

from basket.models.top_freq import PTopFreq
from basket.orchestration.publish import (
    NoProductionModel,
    archive_version,
    pin_production,
    production_version,
    publish,
    register_production,
)
from basket.serving.batch import merge_shards, score_users
from basket.serving.package import package
from basket.testing.local_server import free_port
from basket.training.compare import evaluate_candidate


@pytest.fixture(scope="module")
def make_run(prepared, tmp_path_factory):
    """make_run(version) -> (run dir, its basket.mar): a packaged P-TopFreq winner."""
    splits = prepared.splits

    def make(version: str, threshold: float = 0.5):
        run = tmp_path_factory.mktemp(version)
        prepared.save(run / "prepared")
        model = PTopFreq(prepared.vocab, threshold=threshold)
        model.save(run / "winner", extra={"name": "p_topfreq", "version": version})
        metrics = evaluate_candidate(model, splits.eval_inputs, splits.eval_targets, 10).metrics
        report = {"primary_metric": "recall@10", "winner": "p_topfreq", "k": 10,
                  "candidates": {"p_topfreq": metrics}}  # fmt: skip
        (run / "report.json").write_text(json.dumps(report))
        return run, package(run, run / "basket.mar")["mar"]

    return make


def test_promotion_makes_basket_mar_the_new_version_and_keeps_the_old(make_run, tmp_path):
    store = tmp_path / "store"
    for version in ("p_topfreq-v1", "p_topfreq-v2"):
        run, mar = make_run(version)
        assert publish(run, mar, store).promoted
    assert production_version(store) == "p_topfreq-v2"
    assert archive_version(store / "basket-p_topfreq-v1.mar") == "p_topfreq-v1"
    history = json.loads((store / "production.json").read_text())["history"]
    assert [entry["version"] for entry in history] == ["p_topfreq-v1", "p_topfreq-v2"]


def test_a_retried_publish_records_the_promotion_once(make_run, tmp_path):
    store = tmp_path / "store"
    run, mar = make_run("p_topfreq-retried")
    publish(run, mar, store)
    publish(run, mar, store)  # the task retried after a crash past the rename
    history = json.loads((store / "production.json").read_text())["history"]
    assert [entry["version"] for entry in history] == ["p_topfreq-retried"]


def test_a_failed_registration_leaves_the_promotion_whole(make_run, tmp_path):
    store = tmp_path / "store"
    run, mar = make_run("p_topfreq-unregistered")
    publish(run, mar, store)
    before = {path.name: path.read_bytes() for path in store.iterdir()}
    with pytest.raises(OSError):
        register_production(store, f"http://127.0.0.1:{free_port()}", token="key")
    assert {path.name: path.read_bytes() for path in store.iterdir()} == before
    assert production_version(store) == "p_topfreq-unregistered"


def test_an_empty_store_has_no_production_model_and_says_how_to_get_one(tmp_path):
    with pytest.raises(NoProductionModel, match="basket_retrain"):
        pin_production(tmp_path / "store", tmp_path / "run")


def test_a_publish_during_a_batch_run_does_not_mix_versions(make_run, synth_dir, tmp_path):
    """Shards score the pinned copy: a newer basket.mar landing midway changes nothing."""
    store = tmp_path / "store"
    publish(*make_run("p_topfreq-old"), store)
    version, pinned = pin_production(store, tmp_path / "batch_run")
    first = score_users(pinned, synth_dir, tmp_path / "part-0.parquet", shard=(0, 2))
    publish(*make_run("p_topfreq-new", threshold=0.4), store)  # lands between two shards
    assert production_version(store) == "p_topfreq-new"
    second = score_users(pinned, synth_dir, tmp_path / "part-1.parquet", shard=(1, 2))
    partition = merge_shards([first.out_path, second.out_path], tmp_path / "recs", "2026-11-28")
    assert set(pd.read_parquet(partition)["model_version"]) == {version} == {"p_topfreq-old"}


def test_shards_of_two_versions_are_not_merged(make_run, synth_dir, tmp_path):
    parts = [
        score_users(make_run(version)[1], synth_dir, tmp_path / f"{version}.parquet").out_path
        for version in ("p_topfreq-a", "p_topfreq-b")
    ]
    with pytest.raises(ValueError, match="several model versions"):
        merge_shards(parts, tmp_path / "recs", "2026-11-28")
    assert not (tmp_path / "recs" / "run_date=2026-11-28").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A model store on a tmpfs of 2 MiB (as root, as CI runs); skipped where mounting is not
    allowed, failed under CI."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        message = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_publish_onto_a_full_disk_fails_loudly_and_leaves_production_as_it_was(
    make_run, small_disk
):
    """The disk fills during a publish: it raises, basket.mar and production.json stay the
    previous version's bytes, nothing half-written is left, and once there is room again the
    same publish succeeds."""
    store = small_disk / "store"
    run, mar = make_run("p_topfreq-disk-1")
    assert publish(run, mar, store).promoted
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(free - mar.stat().st_size // 2, 0))
    run2, mar2 = make_run("p_topfreq-disk-2")
    with pytest.raises(OSError, match="No space left"):
        publish(run2, mar2, store)
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
    assert production_version(store) == "p_topfreq-disk-1"
    filler.unlink()
    assert publish(run2, mar2, store).promoted
    assert production_version(store) == "p_topfreq-disk-2"
