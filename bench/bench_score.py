"""Batch-scoring benchmark: `basket score` end to end at Instacart scale, against in-process scoring.

Uses the synthetic Instacart-scale folder of bench_load.py without its `test`
orders, so every one of the 206,209 customers is scored. The model is an
XGBoost candidate over every product bought, `rank:ndcg` (the defaults),
trained on 20,000 customers (its speed does not depend on how well it was
trained; the candidate and feature work per customer is the real one).
Measured in the same process:

- baseline: `model.recommend(histories, 10)` on histories already in memory;
- the same for a model with the earlier defaults (10,000 products, binary:logistic):
  the defaults may be at most 10 % slower;
- `score_users` in a fresh process: load (in blocks of 50,000 customers), build
  histories, score in chunks, write parquet atomically; its peak RSS, and the
  same for a quarter of the customers (shard 0 of 4), to show memory does not
  grow with the number of customers;
- the store's cost of nightly answers: `basket store load` into a SQLite store (seconds,
  file size), then `score_users` with that store, which also keeps each customer's top 100
  beside their history (seconds against the plain run, the file size after).

Prints customers per second for both and their ratio, with the machine.
Usage: python bench/bench_score.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import Target, record
from basket.data import VocabConfig
from basket.data.history import build_histories, make_splits
from basket.data.load import load_tables
from basket.data.vocab import Vocabulary
from basket.models.base import TrainingSet
from basket.models.xgb import XGBConfig, XGBoostRecommender
from basket.serving.store.fill import load_snapshot
from bench_load import INSTACART_USERS, ensure_instacart_data, ensure_parquet_copy

TARGET_PER_SECOND = 4000  # issue 13: customers per second, `basket score` end to end
EARLIER_TOP_N = 10_000  # the vocabulary before issue 19 (then with binary:logistic)


def without_test_orders(parquet_folder: Path) -> Path:
    """A copy of the folder whose orders.parquet has no `test` orders (so scoring takes every user)."""
    folder = parquet_folder.with_name(parquet_folder.name + "_no_test")
    folder.mkdir(exist_ok=True)
    for path in parquet_folder.glob("*.parquet"):
        target = folder / path.name
        if target.exists():
            continue
        table = pq.read_table(path)
        if path.stem == "orders":
            table = table.filter(pc.not_equal(table["eval_set"], "test"))
        pq.write_table(table, target)
    return folder


def scoring_model(
    tables, histories, top_n: int | None = None, objective: str = XGBConfig.objective
) -> XGBoostRecommender:
    """The benchmark's model: XGBoost (60 rounds, `objective`) over the vocabulary `top_n` gives
    (None: every product bought, the default), trained on 20,000 customers. Its speed, not its
    quality, is what the scoring benchmarks measure."""
    vocab = Vocabulary.build(histories.product_ids, tables.products, VocabConfig(top_n=top_n))
    sample = make_splits(histories.select_users(np.arange(20_000)))
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 64)).astype(np.float32)
    data = TrainingSet(
        sample.valid_inputs, sample.valid_targets, vocab, tables.products, embeddings
    )
    config = XGBConfig(rounds=60, targets_per_user=1, objective=objective)
    return XGBoostRecommender(vocab, config).fit(data)


def in_process_seconds(model: XGBoostRecommender, histories) -> float:
    """Seconds of `model.recommend(histories, 10)` on histories already in memory."""
    started = time.perf_counter()
    model.recommend(histories, 10)
    return time.perf_counter() - started


def score_in_fresh_process(
    model_dir: Path, folder: Path, out: Path, shard, store_url: str | None = None
) -> tuple:
    """(seconds, peak RSS GiB, result dict) of `score_users` in its own Python process.

    Peak RSS is the process's VmHWM: getrusage's ru_maxrss would carry over this (large)
    parent's size through fork and exec on Linux."""
    code = (
        "import json; from basket.serving.batch import score_users; "
        f"r = score_users({str(model_dir)!r}, {str(folder)!r}, {str(out)!r}, 10, {shard!r}, "
        f"store_url={store_url!r}); "
        "print(json.dumps({'users': r.users, 'rows': r.rows, 'seconds': r.seconds, "
        "'peak_kib': int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])}))"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )  # fmt: skip
    seconds = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, result["peak_kib"] / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "instacart"
    )
    args = parser.parse_args()
    folder = without_test_orders(
        ensure_parquet_copy(ensure_instacart_data(INSTACART_USERS, args.out))
    )

    tables = load_tables(folder)
    histories = build_histories(tables)
    model = scoring_model(tables, histories)
    vocab = model.vocab
    model_dir = model.save(
        args.out.parent / "bench_score_model", extra={"version": "bench-xgboost"}
    )
    # Issue 19: the whole catalogue and rank:ndcg must not make scoring > 10 % slower than the
    # earlier defaults (10,000 products, binary:logistic), measured here in the same run.
    earlier = scoring_model(tables, histories, EARLIER_TOP_N, "binary:logistic")
    earlier_s = in_process_seconds(earlier, histories)
    in_process_s = in_process_seconds(model, histories)
    del tables, earlier
    recs = args.out.parent / "bench_recommendations.parquet"
    end_to_end_s, peak_gib, result = score_in_fresh_process(model_dir, folder, recs, None)
    quarter_s, quarter_gib, quarter = score_in_fresh_process(model_dir, folder, recs, (0, 4))
    store_file = args.out.parent / "bench_score_store.sqlite"
    store_file.unlink(missing_ok=True)
    started = time.perf_counter()
    load_snapshot(folder, f"sqlite:///{store_file}")
    load_s, histories_mib = time.perf_counter() - started, store_file.stat().st_size / 2**20
    answers_s, answers_gib, _ = score_in_fresh_process(
        model_dir, folder, recs, None, f"sqlite:///{store_file}"
    )
    answers_mib = store_file.stat().st_size / 2**20
    print(
        f"store: load {load_s:.1f} s, {histories_mib:,.0f} MiB of histories; score with the "
        f"nightly answers {answers_s:.1f} s ({answers_s / end_to_end_s:.2f}x the plain run), "
        f"file {answers_mib:,.0f} MiB after"
    )

    users = histories.n_users
    print(f"machine: {describe_machine()}")
    print(
        f"data: {users:,} customers scored, vocabulary {len(vocab):,}, XGBoost ({model.booster.best_iteration + 1} trees)\n"
    )
    print(f"{'path':44} {'seconds':>8} {'customers/s':>12} {'vs in-process':>14}")
    for name, seconds in (
        (f"earlier default ({EARLIER_TOP_N:,} products, logistic)", earlier_s),
        ("model.recommend in process (baseline)", in_process_s),
        ("basket score end to end", end_to_end_s),
    ):
        print(f"{name:44} {seconds:8.1f} {users / seconds:12,.0f} {in_process_s / seconds:13.2f}x")
    rate = users / end_to_end_s
    slower = in_process_s / earlier_s
    print(
        f"target (issue 19): the defaults no more than 10 % slower than the earlier ones in "
        f"process: {'met' if slower <= 1.10 else 'NOT met'} ({slower:.2f}x the time)"
    )
    print(
        f"target (issue 13): >= {TARGET_PER_SECOND:,} customers/s end to end: "
        f"{'met' if rate >= TARGET_PER_SECOND else 'NOT met'} ({rate:,.0f})"
    )
    print(
        f"\npeak RSS of `basket score` (fresh process): {peak_gib:.2f} GiB for all "
        f"{result['users']:,} customers, {quarter_gib:.2f} GiB for a quarter "
        f"({quarter['users']:,}, shard 0 of 4, {quarter_s:.1f} s); ratio {peak_gib / quarter_gib:.2f}x "
        f"for {result['users'] / quarter['users']:.1f}x the customers"
    )
    payload = {
        "machine": describe_machine(),
        "users": users,
        "vocabulary": len(vocab),
        "earlier_default_in_process_s": earlier_s,
        "in_process_s": in_process_s,
        "end_to_end_s": end_to_end_s,
        "rows": result["rows"],
        "peak_rss_gib": peak_gib,
        "quarter_peak_rss_gib": quarter_gib,
    }
    (args.out.parent / "score.json").write_text(json.dumps(payload, indent=1))
    paths = (
        (f"earlier default ({EARLIER_TOP_N:,} products, logistic), in process", earlier_s),
        ("model.recommend in process (baseline)", in_process_s),
        ("basket score end to end", end_to_end_s),
        ("basket score, shard 0 of 4", quarter_s),
        ("basket score end to end, nightly answers into a SQLite store", answers_s),
    )
    record(
        "score",
        "Batch scoring (`basket score`) at Instacart scale",
        ["path", "seconds", "customers/s", "vs in process", "peak RSS GiB"],
        [
            [name, round(seconds, 1), round(n / seconds), round(in_process_s / seconds, 2), gib]
            for (name, seconds), n, gib in zip(
                paths, (users, users, users, quarter["users"], users),
                (None, None, round(peak_gib, 2), round(quarter_gib, 2), round(answers_gib, 2)),
                strict=True,
            )
        ],
        [
            Target(f"basket score end to end >= {TARGET_PER_SECOND:,} customers/s",
                   f"{rate:,.0f} customers/s", rate >= TARGET_PER_SECOND),
            Target("the whole-catalogue rank:ndcg default at most 1.10 x the earlier default's time",
                   f"{slower:.2f} x", slower <= 1.10),
            Target("basket store load at most 2 x its 22.6 s before nightly answers existed",
                   f"{load_s:.1f} s", load_s <= 2 * 22.6),
        ],
        {"customers": users, "vocabulary": len(vocab),
         "trees": model.booster.best_iteration + 1, "store_load_s": round(load_s, 1),
         "store_mib_histories": round(histories_mib), "store_mib_with_answers": round(answers_mib)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
