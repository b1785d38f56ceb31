"""Stacking a neural net's scores into XGBoost, out of fold (issue 19, lever 3): does validation
want it?

The net never sees a basket that XGBoost's training rows predict: it is fit on each
household's inputs less their newest `xgboost.targets_per_user` orders (early stopping on the
basket after those), one pos_weight. Its probability of each candidate is then one more
XGBoost column at every cut point, on the validation baskets and wherever the model scores.
Reported on Complete Journey's validation baskets only, beside the same XGBoost without the
column: a lever is built into `basket retrain` only if validation says so (the held-out
baskets are not read here).

Usage: python bench/bench_stack_neural.py [--net cnngru] [--pos-weight 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import record
from basket.config.run import load_config
from basket.data.history import Histories, holdout_last, without_newest
from basket.data.vocab import neural_vocabulary
from basket.models.base import TrainingSet
from basket.models.neural import NeuralRecommender
from basket.models.xgb import XGBoostRecommender
from basket.training.tuning import tuning_set, validation_ranking
from bench_levers import data_and_embeddings

SCORE_USERS = 256  # customers scored densely at a time (256 x a whole catalogue of floats)


def candidate_scores(
    net: NeuralRecommender, histories: Histories, users: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """(R,) the net's probability at each (user position, vocabulary index) row, rows sorted
    by user."""
    out = np.empty(len(users), dtype=np.float32)
    for start in range(0, histories.n_users, SCORE_USERS):
        chunk = np.arange(start, min(start + SCORE_USERS, histories.n_users))
        first, last = np.searchsorted(users, [chunk[0], chunk[-1] + 1])
        dense = net.score(histories.select_users(chunk))
        out[first:last] = dense[users[first:last] - start, items[first:last]]
    return out


@dataclass
class StackedXGBoost(XGBoostRecommender):
    """XGBoost with one more column: an out-of-fold neural net's probability."""

    net: NeuralRecommender | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return (*super().features, "neural")

    def _candidates(self, histories: Histories):
        candidates = super()._candidates(histories)
        scores = candidate_scores(self.net, histories, candidates.users, candidates.items)
        return replace(candidates, features=np.column_stack([candidates.features, scores]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="cnngru", choices=["cnngru", "attentiongru"])
    parser.add_argument("--pos-weight", type=float, default=10.0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "levers"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data, embeddings = data_and_embeddings(args.out)
    config = load_config()
    k = config.train.k
    tuning = tuning_set(data, embeddings, config.valid_users)
    older, older_targets = holdout_last(
        without_newest(tuning.inputs, config.xgboost.targets_per_user)
    )
    head = len(neural_vocabulary(data.vocab, config.vocab))
    net = NeuralRecommender.build(
        args.net, config.predictor, data.vocab, args.pos_weight, config.train, head
    )
    net.fit(TrainingSet(older, older_targets, data.vocab, data.products, embeddings))
    net_seconds = time.perf_counter() - started
    rows = {}
    for name, model in (
        ("xgboost", XGBoostRecommender(data.vocab, config.xgboost)),
        (f"xgboost + out-of-fold {args.net}", StackedXGBoost(data.vocab, config.xgboost, net=net)),
    ):
        began = time.perf_counter()
        model.fit(tuning)
        metrics = validation_ranking(model, tuning, k)
        rows[name] = {
            "valid_recall@10": metrics[f"recall@{k}"],
            "valid_ndcg@10": metrics[f"ndcg@{k}"],
            "trees": model.booster.best_iteration + 1,
            "seconds": round(time.perf_counter() - began, 1),
        }
        print(name, json.dumps(rows[name]), flush=True)
    result = {
        "machine": describe_machine(),
        "net": args.net,
        "pos_weight": args.pos_weight,
        "net_seconds": round(net_seconds, 1),
        "net_valid_recall@10_on_its_own_split": validation_ranking(
            net, TrainingSet(older, older_targets, data.vocab), k
        )[f"recall@{k}"],
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / f"stack_{args.net}.json").write_text(json.dumps(result, indent=1))
    record(
        f"stack_{args.net}",
        f"Out-of-fold {args.net} scores as an XGBoost feature (Complete Journey, validation)",
        ["model", "valid recall@10", "valid NDCG@10", "trees", "seconds"],
        [[name, round(row["valid_recall@10"], 4), round(row["valid_ndcg@10"], 4), row["trees"],
          row["seconds"]] for name, row in rows.items()],
        parameters={"pos_weight": args.pos_weight, "net_seconds": result["net_seconds"]},
    )  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
