"""Adding a candidate is one entry in the candidate table plus its model file, nothing else.

On a copy of the package, a sixth candidate (a toy: each customer's own products, the more
recently bought the higher) is added that way only; then the real commands, run on the copy,
train it, compare it, package it and serve it through a real TorchServe and a real Triton,
and their answers equal `basket score`'s rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import basket
from basket.data import build_histories, load_tables
from basket.serving.torchserve import http
from basket.testing.histories import scoring_users
from basket.testing.requests import history_request
from basket.testing.torchserve_server import LocalTorchServe
from basket.testing.triton_server import LocalTriton

pytestmark = pytest.mark.slow

TOY_MODEL = '''"""A toy candidate: each customer's own products, the more recently bought the higher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from basket.io.atomic import atomic_dir
from basket.data.user_products import user_product_stats
from basket.data.vocab import Vocabulary
from basket.models.base import ChunkedRecommender, write_model_dir
from basket.models.model_meta import ModelMeta


@dataclass
class LastBought(ChunkedRecommender):
    vocab: Vocabulary
    threshold: float = 0.5
    decoding: str = "threshold"
    kind: ClassVar[str] = "last_bought"
    score_form: ClassVar[str] = "sparse"

    def fit(self, data):
        return self

    def score_sparse(self, histories):
        stats = user_product_stats(histories, self.vocab)
        row, entry = stats.rows(np.arange(histories.n_users))
        values = (1.0 / (1.0 + stats.orders_since[entry])).astype(np.float32)
        return row, stats.items[entry].astype(np.int64), values, None

    def score(self, histories):
        rows, items, values, _ = self.score_sparse(histories)
        scores = np.zeros((histories.n_users, len(self.vocab)), np.float32)
        scores[rows, items] = values
        return scores

    def save(self, model_dir, extra=None):
        meta = {"kind": self.kind, "threshold": self.threshold, "decoding": self.decoding}
        with atomic_dir(model_dir) as staging:
            write_model_dir(staging, self.vocab, {**meta, **(extra or {})})
        return Path(model_dir)

    @classmethod
    def load(cls, model_dir):
        meta = ModelMeta.read(model_dir)
        vocab = Vocabulary.load(Path(model_dir) / "vocab.parquet")
        return cls(vocab, threshold=meta.threshold, decoding=meta.decoding)
'''
ENTRY = (
    '    Candidate("last_bought", "basket.models.last_bought:LastBought", "train_references"),\n'
)


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> Path:
    """A copy of the `basket` package with the toy candidate added: its model file and one
    table entry, the only two edits."""
    src = tmp_path_factory.mktemp("extended")
    package = src / "basket"
    shutil.copytree(
        Path(basket.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package / "models" / "last_bought.py").write_text(TOY_MODEL)
    table = package / "config" / "candidates.py"
    text = table.read_text()
    assert text.count("TABLE = (\n") == 1
    table.write_text(text.replace("TABLE = (\n", "TABLE = (\n" + ENTRY))
    return src


def run_basket(src: Path, *args: str) -> subprocess.CompletedProcess:
    """`basket ARGS` run by this Python with the extended copy first on its path."""
    env = {**os.environ, "PYTHONPATH": str(src), "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "basket.commands.cli", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_candidate_added_by_one_table_entry_is_trained_compared_packaged_and_served(
    extended, synth_dir, triton_venv, tmp_path
):
    run = tmp_path / "run"
    help_text = run_basket(extended, "train", "--help").stdout
    assert "last_bought" in help_text  # the CLI's choices follow the table
    run_basket(
        extended, "train", str(synth_dir), "--out", str(run),
        "--candidates", "last_bought", "p_topfreq", "--embed-epochs", "1",
    )  # fmt: skip
    report = json.loads((run / "report.json").read_text())
    assert set(report["candidates"]) == {"last_bought", "p_topfreq"}
    assert report["candidates"]["last_bought"]["recall@10"] > 0
    assert json.loads((run / "candidates" / "last_bought" / "model.json").read_text())[
        "decoding_on_validation"
    ]  # its decoding was chosen on validation, as every candidate's

    # Ship the toy whichever won: the package and batch commands take any model dir.
    (run / "winner").unlink() if (run / "winner").is_symlink() else shutil.rmtree(run / "winner")
    shutil.copytree(run / "models" / "last_bought", run / "winner")
    store = tmp_path / "store"
    triton = tmp_path / "triton"
    run_basket(
        extended, "package", str(run), "--out", str(store / "basket.mar"), "--triton", str(triton)
    )
    rows = tmp_path / "batch.parquet"
    run_basket(
        extended, "score", "--model", str(run / "winner"), "--data", str(synth_dir),
        "--out", str(rows),
    )  # fmt: skip
    frame = pd.read_parquet(rows)

    histories = build_histories(load_tables(synth_dir))
    histories = histories.select_users(scoring_users(histories))
    users = np.linspace(0, histories.n_users - 1, 6).astype(int)
    requests = [history_request(histories, int(user)) for user in users]
    with LocalTorchServe(model_store=store, env={"PYTHONPATH": str(extended)}) as server:
        url = f"{server.inference_url}/predictions/basket"
        torchserve = [http("POST", url, json.dumps(body).encode()) for body in requests]
    assert all(status == 200 for status, _ in torchserve), torchserve
    assert all(a["model_version"].startswith("last_bought") for _, a in torchserve), torchserve
    # The Triton repository carries its own copy of the package: the toy's model file too.
    with LocalTriton(triton, venv=triton_venv) as server:
        answers = {"torchserve": [a for _, a in torchserve], "triton": server.ask(requests)}
    for name, served in answers.items():  # the toy's own scores, 1 / (1 + baskets since)
        for user, answer in zip(users, served, strict=True):
            row = frame[frame["user_id"] == histories.user_ids[user]].sort_values("rank")
            assert answer["product_ids"] == row["product_id"].tolist(), name
            np.testing.assert_allclose(answer["scores"], row["score"].to_numpy(), atol=1e-6)
