"""Batch-scoring benchmark: `basket score` end to end at Instacart scale, against in-process scoring.

Uses the synthetic Instacart-scale folder of bench_load.py without its `test`
orders, so every one of the 206,209 customers is scored. The model is an
XGBoost candidate trained on 20,000 customers (its speed does not depend on how
well it was trained; the candidate and feature work per customer is the real
one). Measured in the same process:

- baseline: `model.recommend(histories, 10)` on histories already in memory;
- `score_users`: load, build histories, score in chunks, write parquet atomically.

Prints customers per second for both and their ratio, with the machine.
Usage: python bench/bench_score.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from basket.batch import score_users
from basket.data import VocabConfig
from basket.data.history import build_histories, make_splits
from basket.data.load import load_tables
from basket.data.vocab import Vocabulary
from basket.models.xgb import XGBConfig, XGBoostRecommender
from basket.models.xgb_features import ProductTable
from bench_load import INSTACART_USERS, ensure_instacart_data, ensure_parquet_copy


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
    vocab = Vocabulary.build(histories.product_ids, tables.products, VocabConfig(top_n=10_000))
    sample = make_splits(histories.select_users(np.arange(20_000)))
    embeddings = np.random.default_rng(0).normal(size=(len(vocab), 64)).astype(np.float32)
    products = ProductTable.build(sample.valid_inputs, vocab, tables.products, embeddings)
    model = XGBoostRecommender(vocab, products, XGBConfig(rounds=60, targets_per_user=1))
    model.fit(sample.valid_inputs, sample.valid_inputs, sample.valid_targets)
    model_dir = model.save(
        args.out.parent / "bench_score_model", extra={"version": "bench-xgboost"}
    )

    started = time.perf_counter()
    model.recommend(histories, 10)
    in_process_s = time.perf_counter() - started
    started = time.perf_counter()
    result = score_users(model_dir, folder, args.out.parent / "bench_recommendations.parquet", k=10)
    end_to_end_s = time.perf_counter() - started

    users = histories.n_users
    print(f"machine: {describe_machine()}")
    print(
        f"data: {users:,} customers scored, vocabulary {len(vocab):,}, XGBoost ({model.booster.best_iteration + 1} trees)\n"
    )
    print(f"{'path':44} {'seconds':>8} {'customers/s':>12} {'vs in-process':>14}")
    for name, seconds in (
        ("model.recommend in process (baseline)", in_process_s),
        ("basket score end to end", end_to_end_s),
    ):
        print(f"{name:44} {seconds:8.1f} {users / seconds:12,.0f} {in_process_s / seconds:13.2f}x")
    payload = {
        "machine": describe_machine(),
        "users": users,
        "in_process_s": in_process_s,
        "end_to_end_s": end_to_end_s,
        "rows": result.rows,
    }
    (args.out.parent / "score.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
