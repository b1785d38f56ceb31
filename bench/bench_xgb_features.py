"""XGBoost feature building at Instacart scale, against XGBoost's own work on the same rows.

On the synthetic Instacart-scale folder (bench_load.py), builds the candidate
rows and features of every customer (`candidate_features`: products they
bought plus 20 popular ones), then, in the same process and on those rows:

- baseline 1: `xgboost.train` for 20 rounds (hist, 2 threads);
- baseline 2: `Booster.predict` over all rows.

Prints rows, seconds, rows per second, and feature time relative to each
baseline, with the machine. Then the serving case: `--requests` customers (a
fixed sample) one at a time, as a lone request builds them, against the
booster's in-place prediction on each one's rows on one thread (a server
worker's setting) in the same run. Usage: python bench/bench_xgb_features.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import record
from basket.data import VocabConfig
from basket.data.prepare import prepare
from basket.models.xgb_features import BASE_FEATURES, ProductTable, candidate_features
from bench_load import INSTACART_USERS, ensure_instacart_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "instacart"
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2_000, help="lone customers timed")
    args = parser.parse_args()

    folder = ensure_instacart_data(INSTACART_USERS, args.out)
    data = prepare(folder, VocabConfig(top_n=10_000))
    history = data.splits.eval_inputs
    embeddings = np.random.default_rng(0).normal(size=(len(data.vocab), 64)).astype(np.float32)
    products = ProductTable.build(history, data.vocab, data.products, embeddings)

    started = time.perf_counter()
    candidates = candidate_features(history, data.vocab, products, explore=20)
    features_s = time.perf_counter() - started
    rows = len(candidates.users)
    labels = (
        np.random.default_rng(0).random(rows) < 0.1
    )  # speed only: the labels do not matter here

    matrix = xgb.DMatrix(
        candidates.features, label=labels, feature_names=list(BASE_FEATURES), nthread=2
    )
    started = time.perf_counter()
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "nthread": 2}
    booster = xgb.train(params, matrix, num_boost_round=args.rounds)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    booster.predict(matrix)
    predict_s = time.perf_counter() - started

    print(f"machine: {describe_machine()}, xgboost {xgb.__version__}")
    print(
        f"data: {history.n_users:,} customers, vocabulary {len(data.vocab):,}, {rows:,} candidate rows x {len(BASE_FEATURES)} features\n"
    )
    print(f"{'step':40} {'seconds':>8} {'rows/s':>14} {'features / step':>16}")
    for name, seconds in (
        ("candidate_features (ours)", features_s),
        (f"xgboost.train, {args.rounds} rounds (baseline)", train_s),
        ("Booster.predict (baseline)", predict_s),
    ):
        print(f"{name:40} {seconds:8.1f} {rows / seconds:14,.0f} {features_s / seconds:15.2f}x")
    lone = lone_requests(history, data.vocab, products, booster, args.requests)
    print(
        f"\none customer at a time ({args.requests:,} customers, "
        f"{lone['rows_per_request']:.0f} candidate rows each on average), ms per request:"
    )
    print(
        f"{'candidate_features (ours)':40} {lone['features_ms']:8.3f} "
        f"{lone['features_ms'] / lone['predict_ms']:15.2f}x"
    )
    print(f"{'inplace_predict, 1 thread (baseline)':40} {lone['predict_ms']:8.3f} {1:15.2f}x")
    result = {
        "machine": describe_machine(),
        "rows": rows,
        "features_s": features_s,
        "train_s": train_s,
        "predict_s": predict_s,
        "rounds": args.rounds,
        "lone_requests": lone,
    }
    (args.out.parent / "xgb_features.json").write_text(json.dumps(result, indent=1))
    record(
        "xgb_features",
        "XGBoost candidate features against the booster's own work",
        ["step", "seconds", "rows/s", "ms per lone customer"],
        [
            ["candidate_features (ours)", round(features_s, 1), round(rows / features_s),
             round(lone["features_ms"], 3)],
            [f"xgboost.train, {args.rounds} rounds (baseline)", round(train_s, 1),
             round(rows / train_s), None],
            ["Booster.predict (baseline)", round(predict_s, 1), round(rows / predict_s),
             round(lone["predict_ms"], 3)],
        ],
        parameters={"customers": history.n_users, "vocabulary": len(data.vocab),
                    "candidate_rows": rows, "lone_customers": lone["requests"]},
    )  # fmt: skip


def lone_requests(history, vocab, products, booster: xgb.Booster, n: int) -> dict:
    """Mean ms per customer of `candidate_features` on one customer at a time, and of the
    booster's one-thread in-place prediction on that customer's rows."""
    picked = np.random.default_rng(1).choice(history.n_users, min(n, history.n_users), False)
    alone = [history.select_users(np.array([user])) for user in picked]
    booster.set_param({"nthread": 1})
    started = time.perf_counter()
    built = [candidate_features(one, vocab, products, explore=20).features for one in alone]
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    for matrix in built:
        booster.inplace_predict(matrix)
    predict_s = time.perf_counter() - started
    return {
        "requests": len(alone),
        "rows_per_request": float(np.mean([len(matrix) for matrix in built])),
        "features_ms": features_s / len(alone) * 1e3,
        "predict_ms": predict_s / len(alone) * 1e3,
    }


if __name__ == "__main__":
    main()
