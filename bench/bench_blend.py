"""Does a rank blend of XGBoost with a neural net beat XGBoost alone? (issue 19, lever 3)

On Complete Journey's real baskets, as `basket retrain` runs each candidate:
XGBoost and each neural net named are tuned on the validation baskets (each
household's basket before the held-out one), then refit on every order before
the held-out basket. Each model's top `DEPTH` products per customer are blended
by reciprocal rank, `w / (c + rank in XGBoost) + (1 - w) / (c + rank in the
net)` (a product missing from one list gets nothing from it), and the blend's
top 10 is scored. The weight `w` and the constant `c` are chosen on the
validation baskets with the tuned models; the held-out baskets, scored with
the refit models, only report, with the paired 95 % bootstrap interval of the
recall@10 difference to XGBoost alone (w = 1).

Usage: python bench/bench_blend.py [--out DIR] [--nets cnngru attentiongru]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import record
from basket.config.run import RunConfig
from basket.models.metrics import per_user_ranking
from basket.training.significance import bootstrap_means, interval
from basket.training.tuning import refit_set, tune, tuning_set
from bench_levers import data_and_embeddings

DEPTH = 50  # each model's list the blend reads
WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))  # w: XGBoost's share
CONSTANTS = (5.0, 20.0, 60.0)  # c of reciprocal-rank fusion


def blend_top_k(
    first: np.ndarray, second: np.ndarray, weight: float, constant: float, k: int
) -> np.ndarray:
    """(U, k) product ids ranked by `weight / (constant + rank in first) + (1 - weight) /
    (constant + rank in second)`, from two (U, DEPTH) ranked lists (-1 padded); ties go to the
    lower product id. Padded with -1 where the lists hold fewer than k products."""
    n_users, depth = first.shape
    ids = np.concatenate([first, second], axis=1)
    rank = np.arange(depth, dtype=np.float64)
    gain = np.concatenate(
        [np.broadcast_to(weight / (constant + rank), first.shape),
         np.broadcast_to((1.0 - weight) / (constant + rank), second.shape)], axis=1,
    )  # fmt: skip
    user = np.repeat(np.arange(n_users, dtype=np.int64), 2 * depth)
    valid = ids.ravel() >= 0
    stride = int(ids.max(initial=0)) + 1
    keys, inverse = np.unique(user[valid] * stride + ids.ravel()[valid], return_inverse=True)
    summed = np.bincount(inverse, weights=gain.ravel()[valid], minlength=len(keys))
    owner, product = keys // stride, keys % stride
    # By customer, then by summed gain (highest first), then by product id.
    order = np.lexsort((product, -summed, owner))
    owner, product = owner[order], product[order]
    starts = np.searchsorted(owner, np.arange(n_users))
    place = np.arange(len(owner)) - starts[owner]
    out = np.full((n_users, k), -1, dtype=np.int64)
    keep = place < k
    out[owner[keep], place[keep]] = product[keep]
    return out


def recall(ranked: np.ndarray, targets, k: int) -> np.ndarray:
    """(U,) recall@k of each customer."""
    return per_user_ranking(ranked, targets.offsets, targets.product_ids, k)[f"recall@{k}"]


def ndcg(ranked: np.ndarray, targets, k: int) -> float:
    """Mean NDCG@k."""
    return float(
        per_user_ranking(ranked, targets.offsets, targets.product_ids, k)[f"ndcg@{k}"].mean()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "levers"
    )
    parser.add_argument("--nets", nargs="*", default=["cnngru", "attentiongru"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = RunConfig()
    k = config.train.k
    data, embeddings = data_and_embeddings(args.out)
    tuning = tuning_set(data, embeddings, config.valid_users)
    valid_inputs, valid_targets = tuning.validation()
    held_inputs, held_targets = data.splits.eval_inputs, data.splits.eval_targets
    lists = {}
    for name in ["xgboost", *args.nets]:
        begun = time.perf_counter()
        model = tune(name, tuning, config).model
        valid = model.recommend(valid_inputs, DEPTH).product_ids
        model.fit(refit_set(data, embeddings))
        lists[name] = (valid, model.recommend(held_inputs, DEPTH).product_ids)
        print(f"{name}: tuned and refit in {time.perf_counter() - begun:.0f}s", flush=True)
    xgb_valid, xgb_held = lists["xgboost"]
    alone = recall(xgb_held[:, :k], held_targets, k)
    lines = [
        "| blend | chosen on validation (w, c) | valid recall@10 | valid NDCG@10 | recall@10 "
        "| NDCG@10 | recall@10 gain (95 % interval) versus XGBoost alone |",
        "|---|---|---|---|---|---|---|",
        f"| XGBoost alone | w = 1 | {recall(xgb_valid[:, :k], valid_targets, k).mean():.4f} "
        f"| {ndcg(xgb_valid[:, :k], valid_targets, k):.4f} | {alone.mean():.4f} "
        f"| {ndcg(xgb_held[:, :k], held_targets, k):.4f} | |",
    ]
    for net in args.nets:
        net_valid, net_held = lists[net]
        scored = {
            (w, c): recall(blend_top_k(xgb_valid, net_valid, w, c, k), valid_targets, k).mean()
            for w in WEIGHTS
            for c in CONSTANTS
        }
        # The highest validation recall; ties go to the larger XGBoost weight (the simpler).
        w, c = max(scored, key=lambda key: (round(scored[key], 6), key[0], -key[1]))
        valid_top = blend_top_k(xgb_valid, net_valid, w, c, k)
        held_top = blend_top_k(xgb_held, net_held, w, c, k)
        held = recall(held_top, held_targets, k)
        draws = bootstrap_means(np.stack([held - alone]), config.bootstrap_samples)[:, 0]
        low, high = interval(draws, config.confidence)
        lines.append(
            f"| XGBoost + {net} | w = {w:g}, c = {c:g} | {scored[(w, c)]:.4f} "
            f"| {ndcg(valid_top, valid_targets, k):.4f} | {held.mean():.4f} "
            f"| {ndcg(held_top, held_targets, k):.4f} "
            f"| {held.mean() - alone.mean():+.4f} ({low:+.4f} to {high:+.4f}) |"
        )
        print(json.dumps({"net": net, "valid_recall_by_w_c": {f"{a},{b}": round(v, 4)
                          for (a, b), v in scored.items()}}), flush=True)  # fmt: skip
    print("\n".join(lines))
    record(
        "blend",
        "Rank blends of XGBoost with the neural nets (Complete Journey)",
        [cell.strip() for cell in lines[0].strip("|").split("|")],
        [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]],
        parameters={"households": held_inputs.n_users},
    )  # fmt: skip
    print(f"\n{describe_machine()}; {held_inputs.n_users} households; "
          f"done in {time.perf_counter() - started:.0f}s")  # fmt: skip


if __name__ == "__main__":
    main()
