"""Shared fixtures: small synthetic Instacart folders, generated once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from basket.data.synth import SynthConfig, write_synthetic

# The images the container tests build and run.
IMAGE = "localhost/basket:test"
TRITON_IMAGE = "localhost/basket-triton:test"
# A test that builds an image pays for the build in its own time: 432 s for the first build on
# a fresh machine (no podman layer cache), on top of pytest's 600 s per test.
IMAGE_BUILD_S = 1200


def pytest_collection_modifyitems(items):
    """Tests using an image get the build's time on top of the per-test timeout."""
    for item in items:
        if {"image", "triton_image"} & set(getattr(item, "fixturenames", ())):
            limit = item.config.getini("timeout")
            item.add_marker(pytest.mark.timeout(int(limit or 600) + IMAGE_BUILD_S))


@pytest.fixture(scope="session")
def triton_venv() -> Path:
    """The Triton environment `make test` builds (scripts/triton_env.sh); required in CI."""
    venv = Path(__file__).resolve().parents[1] / ".venv-triton"
    if not (venv / ".installed").exists():
        message = f"{venv} is missing: `make test` builds it (bash scripts/triton_env.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return venv


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A clean 300-user synthetic folder; read it, never write to it (use `data_copy`)."""
    return write_synthetic(SynthConfig(users=300, seed=7), tmp_path_factory.mktemp("synth"))


@pytest.fixture
def data_copy(synth_dir, tmp_path) -> Path:
    """A private copy of the synthetic folder that a test may corrupt."""
    target = tmp_path / "data"
    shutil.copytree(synth_dir, target)
    return target


@pytest.fixture(scope="session")
def prepared(synth_dir):
    """The 300-user folder loaded, with splits and a vocabulary."""
    from basket.data import VocabConfig
    from basket.data.prepare import prepare

    return prepare(synth_dir, VocabConfig())


@pytest.fixture(scope="session")
def xgb_run_dir(prepared, tmp_path_factory) -> Path:
    """A retrain-like run folder whose `winner/` is a small XGBoost model (expected-F1 baskets)."""
    import numpy as np

    from basket.models.base import TrainingSet
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits, vocab = prepared.splits, prepared.vocab
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    model = XGBoostRecommender(
        vocab, XGBConfig(rounds=40, targets_per_user=2), decoding="expected_f1"
    ).fit(data)
    run_dir = tmp_path_factory.mktemp("run")
    model.save(run_dir / "winner", extra={"name": "xgboost", "version": "xgboost-test-1"})
    return run_dir


@pytest.fixture(scope="session")
def neural_model_dir(prepared, tmp_path_factory) -> Path:
    """An AttentionGRU with its initial (seeded, untrained) weights, saved as a model dir:
    enough to check every path scores a neural model the same way."""
    import torch

    from basket.data.user_products import N_FEATURES
    from basket.models.modules import NextBasketNet, PredictorConfig
    from basket.models.neural import NeuralRecommender

    torch.manual_seed(0)
    config = PredictorConfig(encoder="attention", order_hidden=32, embed_dim=16, gate_hidden=16)
    net = NextBasketNet(config, len(prepared.vocab), N_FEATURES).eval()
    model = NeuralRecommender(net, prepared.vocab, threshold=0.5, decoding="expected_f1")
    folder = tmp_path_factory.mktemp("neural") / "attentiongru"
    return model.save(folder, extra={"name": "attentiongru", "version": "attentiongru-test-1"})


def _small_vocabulary_models(prepared, top_n: int, root: Path) -> dict:
    """A model dir of every kind over the `top_n` most bought products of `prepared`."""
    import numpy as np
    import torch

    from basket.data.user_products import N_FEATURES
    from basket.data.vocab import VocabConfig, Vocabulary
    from basket.models.base import TrainingSet
    from basket.models.blend import BlendRecommender
    from basket.models.modules import NextBasketNet, PredictorConfig
    from basket.models.neural import NeuralRecommender
    from basket.models.tifu_knn import TifuKNN
    from basket.models.top_freq import PTopFreq
    from basket.models.xgb import XGBConfig, XGBoostRecommender

    splits = prepared.splits
    vocab = Vocabulary.build(
        splits.eval_inputs.product_ids, prepared.products, VocabConfig(top_n=top_n)
    )
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    data = TrainingSet(
        splits.valid_inputs, splits.valid_targets, vocab, prepared.products, embeddings
    )
    torch.manual_seed(0)
    config = PredictorConfig(encoder="cnn", order_hidden=16, embed_dim=8, gate_hidden=8)
    models = {
        "p_topfreq": PTopFreq(vocab),
        "tifu_knn": TifuKNN(vocab).fit(TrainingSet(splits.eval_inputs, None, vocab)),
        "xgboost": XGBoostRecommender(vocab, XGBConfig(rounds=10, targets_per_user=1)).fit(data),
        "cnngru": NeuralRecommender(NextBasketNet(config, len(vocab), N_FEATURES).eval(), vocab),
    }
    models["blend"] = BlendRecommender(vocab, models["xgboost"], models["tifu_knn"], weight=0.4)
    return {
        kind: model.save(root / kind, extra={"name": kind, "version": f"{kind}-small"})
        for kind, model in models.items()
    }


@pytest.fixture(scope="session")
def small_vocabulary_models(prepared, tmp_path_factory) -> dict:
    """A model dir of every kind whose vocabulary holds 40 products of a catalogue of
    hundreds, as Instacart's 49,688 products meet the default 10,000-product vocabulary."""
    return _small_vocabulary_models(prepared, 40, tmp_path_factory.mktemp("small_vocabulary"))


@pytest.fixture(scope="session")
def journey_dir(tmp_path_factory) -> Path:
    """Real baskets: Dunnhumby's Complete Journey through `basket import completejourney`,
    cut to 150 households (every basket of theirs) so tests stay quick."""
    import pandas as pd

    from basket.commands.cli import main

    folder = tmp_path_factory.mktemp("journey")
    assert main(["import", "completejourney", "--out", str(folder)]) == 0
    orders = pd.read_parquet(folder / "orders.parquet")
    keep = orders["user_id"].isin(orders["user_id"].drop_duplicates().head(150))
    orders[keep].to_parquet(folder / "orders.parquet", index=False)
    for name in ("order_products__prior", "order_products__train"):
        lines = pd.read_parquet(folder / f"{name}.parquet")
        lines = lines[lines["order_id"].isin(orders.loc[keep, "order_id"])]
        lines.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture(scope="session")
def journey_models(journey_dir, tmp_path_factory) -> dict:
    """A model dir of every kind over Complete Journey's 300 most bought products (of a
    catalogue of about 92,000)."""
    from basket.data import VocabConfig
    from basket.data.prepare import prepare

    prepared = prepare(journey_dir, VocabConfig())
    return _small_vocabulary_models(prepared, 300, tmp_path_factory.mktemp("journey_models"))


@pytest.fixture
def redis_url():
    """A key prefix of its own on the machine's Redis (127.0.0.1:6379), deleted afterwards.
    Under CI an unreachable Redis fails the test instead of skipping it."""
    import os
    import uuid

    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        message = f"Redis is not reachable on 127.0.0.1:6379 ({error})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"basket-test-{uuid.uuid4().hex[:12]}"
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    stale = list(client.scan_iter(match=f"{prefix}:*"))
    if stale:
        client.delete(*stale)
    client.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path) -> str:
    """An empty history store of each backend: a SQLite file, then a Redis prefix."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'histories.sqlite'}"
    return request.getfixturevalue("redis_url")


def _built_image(tag: str, target: str, log_dir: Path) -> dict:
    """The image `target` of the Dockerfile built by scripts/container_build.sh (layers podman
    cached are reused), with its size. Under CI a missing podman fails instead of skipping."""
    if shutil.which("podman") is None:
        message = "podman is not installed (apt-get install podman runc debootstrap)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    log = log_dir / "build.log"
    started = time.perf_counter()
    script = Path(__file__).resolve().parents[1] / "scripts" / "container_build.sh"
    with open(log, "w") as out:
        built = subprocess.run(
            ["bash", str(script), tag, target], stdout=out, stderr=subprocess.STDOUT, timeout=3000
        )
    assert built.returncode == 0, log.read_text()[-3000:]
    size = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", tag],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    print(
        f"image {tag}: {int(size) / 2**20:.0f} MiB, built in {time.perf_counter() - started:.0f} s"
    )
    return {"name": tag, "size_bytes": int(size)}


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> dict:
    """The TorchServe image (the Dockerfile's default target)."""
    return _built_image(IMAGE, "torchserve", tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="session")
def triton_image(tmp_path_factory) -> dict:
    """The Triton image (`--target triton`)."""
    return _built_image(TRITON_IMAGE, "triton", tmp_path_factory.mktemp("build_triton"))
