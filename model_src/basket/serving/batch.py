"""Batch scoring: a model dir and a data folder in, a parquet of recommendations out.

Users are scored in chunks through the same `Recommender.recommend` the online
handler uses, so batch and online answers are identical. Each chunk becomes a
row group of a temporary parquet file beside the target, renamed into place
only when complete (a reader never sees a half-written file). Columns, as in
docs/architecture.md: user_id, rank, product_id, product_name, score, model_version.

Memory does not grow with the number of customers: beyond `BLOCK_USERS` the
data folder is read one block of customers at a time (`basket.data.blocks`),
and a shard `(index, count)` scores one contiguous slice of the customers.

With a history store, each customer's answer (the top `answers_k` products, their scores
and the basket) is also stored beside their history in the store's current snapshot, keyed
to that history and to the model version (`basket.serving.store.nightly`): servers then
answer requests by id with a lookup while neither has changed.
"""

from __future__ import annotations

import logging
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from basket.config.serving import BatchConfig, RequestLimits
from basket.data import schema as s
from basket.data.blocks import (
    part_bounds,
    partition_customers,
    read_frame,
    scoring_user_ids,
    split_tables,
    user_blocks,
)
from basket.data.history import build_histories
from basket.data.quarantine import drop_quarantined, read_quarantine
from basket.io.atomic import atomic_dir, atomic_file
from basket.io.background import read_ahead, write_behind
from basket.models.base import Recommendations
from basket.models.model_meta import ModelMeta
from basket.models.registry import load_model
from basket.serving.store.base import WRITE_TIMEOUT_S, StoreUnavailable
from basket.serving.store.codec import encode_histories
from basket.serving.store.connect import open_store
from basket.serving.store.nightly import encode_answers

log = logging.getLogger(__name__)

CHUNK_USERS = 4096
BLOCK_USERS = BatchConfig.block_users
SCHEMA = pa.schema(
    [
        ("user_id", pa.int32()),
        ("rank", pa.int16()),
        ("product_id", pa.int32()),
        ("product_name", pa.string()),
        ("score", pa.float32()),
        ("model_version", pa.string()),
    ]
)


@dataclass(frozen=True)
class ScoreResult:
    """What `score_users` wrote and how fast."""

    out_path: Path
    users: int
    rows: int
    seconds: float
    answers_stored: int = 0  # customers whose nightly answer went into the history store

    @property
    def users_per_second(self) -> float:
        return self.users / max(self.seconds, 1e-9)


@contextmanager
def opened_model_dir(model: Path | str):
    """A model dir as a folder: itself, or a `.mar` (a zip archive) unpacked to a temp folder."""
    model = Path(model)
    if model.is_dir():
        yield model
        return
    if not zipfile.is_zipfile(model):
        raise FileNotFoundError(f"{model} is neither a model dir nor a .mar archive")
    with tempfile.TemporaryDirectory(prefix="basket-model-") as folder:
        with zipfile.ZipFile(model) as archive:
            archive.extractall(folder)
        yield Path(folder)


def recommendation_table(answer, vocab, version: str, names: pa.Array | None = None) -> pa.Table:
    """The contract columns for one chunk of `Recommendations` (padding ranks dropped).
    `names` is `vocab`'s product names as an Arrow array when the caller keeps one (taking
    from it is a gather in C, not a string conversion per row)."""
    n_users, k = answer.product_ids.shape
    product_ids = answer.product_ids.ravel()
    keep = product_ids >= 0
    names = product_name_array(vocab) if names is None else names
    rows = int(keep.sum())
    return pa.table(
        {
            "user_id": np.repeat(answer.user_ids, k)[keep].astype(np.int32),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), n_users)[keep],
            "product_id": product_ids[keep].astype(np.int32),
            "product_name": names.take(vocab.index_of(product_ids[keep])),
            "score": answer.scores.ravel()[keep].astype(np.float32),
            "model_version": pa.array([version], pa.string()).take(np.zeros(rows, np.int64)),
        },
        schema=SCHEMA,
    )


def product_name_array(vocab) -> pa.Array:
    """`vocab`'s product names as an Arrow string array, index for index."""
    return pa.array(vocab.product_names.astype(str), pa.string())


def shard_users(n_users: int, shard: tuple[int, int] | None) -> np.ndarray:
    """Positions of shard `(index, count)` of `n_users` sorted users: a contiguous slice, so
    shards concatenated in index order are sorted like an unsharded run."""
    if shard is None:
        return np.arange(n_users)
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    bounds = part_bounds(n_users, count)
    return np.arange(bounds[index], bounds[index + 1])


def score_users(
    model: Path | str,
    data_dir: Path | str,
    out_path: Path | str,
    k: int = RequestLimits.default_k,
    shard: tuple[int, int] | None = None,
    quarantine: Path | str | None = None,
    device: str = "cpu",
    store_url: str | None = None,
    answers_k: int = BatchConfig.answers_k,
) -> ScoreResult:
    """Recommend `k` products to every customer to score (see `scoring_user_ids`), or to shard
    `(index, count)` of them, and write parquet atomically. Lines validation quarantined into
    `quarantine` are left out, as in training. With `store_url`, each customer's answer (top
    `answers_k`) is also stored beside their history in that store's current snapshot; a
    store that cannot take them is logged and skipped, never fails the scoring."""
    started = time.perf_counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with opened_model_dir(model) as model_dir:
        recommender = load_model(model_dir).to(device)
        version = ModelMeta.read(model_dir).version
    orders = read_frame(data_dir, s.ORDERS)
    user_ids = scoring_user_ids(orders)
    if shard is not None:
        user_ids = user_ids[shard_users(len(user_ids), shard)]
    quarantined = read_quarantine(quarantine)
    names = product_name_array(recommender.vocab)
    written = {"rows": 0, "users": 0}
    answers = NightlyAnswers.open(store_url, version)
    scored_k = max(k, answers_k) if answers else k

    def write(chunk, answer: Recommendations, writer: pq.ParquetWriter) -> None:
        table = recommendation_table(top(answer, k), recommender.vocab, version, names)
        writer.write_table(table)
        written["rows"] += table.num_rows
        written["users"] += len(answer.user_ids)
        if answers:
            answers.store(chunk, top(answer, answers_k))

    with atomic_file(out_path) as temp_name:
        with (
            pq.ParquetWriter(temp_name, SCHEMA) as writer,
            write_behind() as submit,
            tqdm(total=len(user_ids), desc="score", unit="customer", disable=None) as progress,
        ):
            blocks = user_blocks(data_dir, user_ids, BLOCK_USERS, orders)
            # Histories are built a chunk of customers at a time in the read-ahead thread, so
            # scoring starts after one chunk is built, not a whole block (a shard is one).
            built = (
                build_histories(drop_quarantined(chunk, quarantined))
                for tables in blocks
                for chunk in split_tables(tables, CHUNK_USERS)
            )
            for chunk in read_ahead(built):  # at most CHUNK_USERS customers each
                submit(write, chunk, recommender.recommend(chunk, scored_k), writer)
                progress.update(chunk.n_users)
    rows, users = written["rows"], written["users"]
    stored = answers.close() if answers else 0
    return ScoreResult(out_path, users, rows, time.perf_counter() - started, stored)


def top(recs: Recommendations, k: int) -> Recommendations:
    """`recs` with its rankings cut to the first `k` products (the baskets as they are)."""
    return Recommendations(
        recs.user_ids, recs.product_ids[:, :k], recs.scores[:, :k], recs.basket_offsets,
        recs.basket_product_ids,
    )  # fmt: skip


class NightlyAnswers:
    """Each scored chunk's answers, stored beside the histories of one store snapshot (the one
    current when scoring began). Stops storing, with a warning, when the store cannot take
    them or a load replaces that snapshot meanwhile: the servers then answer live."""

    def __init__(self, store, snapshot: str, version: str):
        self.target, self.snapshot, self.version = store, snapshot, version
        self.stored, self.stopped = 0, False

    @classmethod
    def open(cls, store_url: str | None, version: str) -> NightlyAnswers | None:
        """The answers' destination, or None without a store URL or a loaded snapshot."""
        if not store_url:
            return None
        try:
            store = open_store(store_url, WRITE_TIMEOUT_S, writable=True)
            info = store.info()
        except StoreUnavailable as error:
            log.warning("nightly answers not stored: %s", error)
            return None
        if info is None:
            log.warning("nightly answers not stored: %s holds no snapshot yet", store.url)
            store.close()
            return None
        return cls(store, info.version, version)

    def store(self, chunk, answer: Recommendations) -> None:
        """Store `answer` for the customers of `chunk` (their histories, in the same order)."""
        if self.stopped:
            return
        records = encode_answers(answer, encode_histories(chunk), self.version)
        try:
            kept = self.target.write_answers(self.snapshot, answer.user_ids.tolist(), records)
        except StoreUnavailable as error:
            kept, reason = False, str(error)
        else:
            reason = f"snapshot {self.snapshot} was replaced while scoring"
        if not kept:
            self.stopped = True
            log.warning("nightly answers: stopped after %d customers: %s", self.stored, reason)
            return
        self.stored += len(records)

    def close(self) -> int:
        """Release the store; the number of customers whose answers were stored."""
        self.target.close()
        return self.stored


def plan_shards(
    data_dir: Path | str,
    users_per_shard: int = BatchConfig.users_per_shard,
    inputs_dir: Path | str | None = None,
) -> list[dict]:
    """The shards of a batch-scoring run: [{"index": i, "count": n}, ...], n so that each
    holds at most `users_per_shard` of the users to score (at least one shard). With
    `inputs_dir`, each shard's customers are also written there as a data folder of their
    own (`partition_customers`, one pass over the lines) named by the shard's "data_dir":
    scoring that folder whole is scoring the shard, without reading anyone else's lines."""
    orders = read_frame(data_dir, s.ORDERS)
    user_ids = scoring_user_ids(orders)
    count = max(1, -(-len(user_ids) // users_per_shard))
    shards = [{"index": index, "count": count} for index in range(count)]
    if inputs_dir is None:
        return shards
    parts = partition_customers(data_dir, user_ids, count, inputs_dir, orders)
    return [{**shard, "data_dir": str(part)} for shard, part in zip(shards, parts, strict=True)]


def merge_shards(parts: list[Path | str], dataset_dir: Path | str, run_date: str) -> Path:
    """Concatenate shard files (in the given order) into the partition
    `dataset_dir/run_date=RUN_DATE/recommendations.parquet`, atomically.

    A re-run for the same date replaces the partition instead of adding to it, so
    there are never duplicate rows; other dates are not touched. Shards scored by
    different model versions are refused: a partition holds one version.
    """
    versions = sorted(
        {
            version
            for part in parts
            for version in pq.read_table(part, columns=["model_version"])["model_version"]
            .unique()
            .to_pylist()
        }
    )
    if len(versions) > 1:
        raise ValueError(f"shards were scored by several model versions {versions}: not merged")
    partition = Path(dataset_dir) / f"run_date={run_date}"
    with atomic_dir(partition) as staging:
        with pq.ParquetWriter(staging / "recommendations.parquet", SCHEMA) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part, schema=SCHEMA))
    return partition / "recommendations.parquet"
