"""What each quality lever gains, on Complete Journey's real baskets (issue 19).

One candidate at a time, each variant tuned on the validation baskets (each
household's basket before the held-out one) and refit on every order before the
held-out basket, exactly as `basket retrain` does; then scored on the held-out
baskets. Each row adds one lever to the row before it and reports, for both
splits, recall@10 and NDCG@10, and on the held-out baskets the paired difference
to the row before with its 95 % bootstrap interval. Validation decides; the
held-out columns only report.

Variants: XGBoost over the 10,000 most bought products with the features of the
last round; the whole catalogue; the repeat-timing features; TIFU-KNN stacked as
two features; a ranking objective; product-to-product transitions; fewer, deeper trees (each row says how many trees
an answer walks); how the ranking objective builds its pairs; a longer patience. TIFU-KNN and P-TopFreq over 10,000 products
and over the whole catalogue.

Usage: python bench/bench_levers.py [--out DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import record
from basket.config.run import RunConfig, load_config
from basket.data.prepare import Prepared, prepare
from basket.data.vocab import VocabConfig, line_coverage, neural_vocabulary
from basket.models.embed import embed_products, read_embeddings
from basket.training.compare import evaluate_candidate
from basket.training.significance import bootstrap_means, interval
from basket.training.tuning import refit_set, tune, tuning_set, validation_ranking

REPEAT_TIMING = (
    "up_share_since_first", "up_decayed_50", "up_decayed_80", "up_decayed_95",
    "up_days_vs_p_interval", "p_repurchase", "p_log_interval",
)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One row: a candidate, the vocabulary size (None: whole catalogue), config overrides."""

    name: str
    candidate: str
    top_n: int | None
    overrides: dict = field(default_factory=dict)
    versus: str | None = None  # the row this one adds a lever to


VARIANTS = (
    Variant("p_topfreq, 10,000 products", "p_topfreq", 10_000),
    Variant("p_topfreq, whole catalogue", "p_topfreq", None, versus="p_topfreq, 10,000 products"),
    Variant("tifu_knn, 10,000 products", "tifu_knn", 10_000),
    Variant("tifu_knn, whole catalogue", "tifu_knn", None, versus="tifu_knn, 10,000 products"),
    Variant(
        "xgboost, 10,000 products, last round's features", "xgboost", 10_000,
        {"xgboost": {"drop_features": REPEAT_TIMING}},
    ),
    Variant(
        "xgboost, whole catalogue", "xgboost", None,
        {"xgboost": {"drop_features": REPEAT_TIMING}},
        versus="xgboost, 10,000 products, last round's features",
    ),
    Variant(
        "xgboost, + repeat timing", "xgboost", None, versus="xgboost, whole catalogue",
    ),
    Variant(
        "xgboost, + TIFU-KNN stacked", "xgboost", None,
        {"xgboost": {"neighbour_features": True}}, versus="xgboost, + repeat timing",
    ),
    Variant(
        "xgboost, + rank:ndcg", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg"}}, versus="xgboost, + repeat timing",
    ),
    Variant(
        "xgboost, rank:ndcg without repeat timing", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg", "drop_features": REPEAT_TIMING}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, 6 cut points per customer", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg", "targets_per_user": 6}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, learning rate 0.05, 800 rounds", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg", "learning_rate": 0.05, "rounds": 800,
                     "early_stopping_rounds": 50}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:pairwise", "xgboost", None,
        {"xgboost": {"objective": "rank:pairwise"}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:map", "xgboost", None,
        {"xgboost": {"objective": "rank:map"}}, versus="xgboost, + rank:ndcg",
    ),
    # Fewer trees answer faster (issue 22): each tree costs a serving request about the same.
    Variant(
        "xgboost, rank:ndcg, learning rate 0.3", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg", "learning_rate": 0.3}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, depth 8, learning rate 0.2", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg", "max_depth": 8, "learning_rate": 0.2}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, depth 10, learning rate 0.2", "xgboost", None,
        {"xgboost": {"objective": "rank:ndcg", "max_depth": 10, "learning_rate": 0.2,
                     "min_child_weight": 10.0}},
        versus="xgboost, + rank:ndcg",
    ),
    # Pairs of the ranking objective: XGBoost's default builds them over the 32 best-ranked
    # candidates of each query; the metric is at 10.
    Variant(
        "xgboost, rank:ndcg, top-10 pairs", "xgboost", None,
        {"xgboost": {"ranking_pair_method": "topk", "ranking_pairs": 10}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, top-20 pairs", "xgboost", None,
        {"xgboost": {"ranking_pair_method": "topk", "ranking_pairs": 20}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, top-64 pairs", "xgboost", None,
        {"xgboost": {"ranking_pair_method": "topk", "ranking_pairs": 64}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, top-128 pairs", "xgboost", None,
        {"xgboost": {"ranking_pair_method": "topk", "ranking_pairs": 128}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, early stopping after 50 rounds", "xgboost", None,
        {"xgboost": {"early_stopping_rounds": 50}}, versus="xgboost, + rank:ndcg",
    ),
    # Regularisation for a small panel (Complete Journey: 7,110 cut points).
    Variant(
        "xgboost, rank:ndcg, min child weight 1", "xgboost", None,
        {"xgboost": {"min_child_weight": 1.0}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, min child weight 20", "xgboost", None,
        {"xgboost": {"min_child_weight": 20.0}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, depth 4", "xgboost", None,
        {"xgboost": {"max_depth": 4}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, columns 0.6, rows 0.7 per tree", "xgboost", None,
        {"xgboost": {"colsample_bytree": 0.6, "subsample": 0.7}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, 8 random pairs per candidate", "xgboost", None,
        {"xgboost": {"ranking_pair_method": "mean", "ranking_pairs": 8}},
        versus="xgboost, + rank:ndcg",
    ),
    # Product-to-product transitions from the last basket (basket.models.transitions).
    Variant(
        "xgboost, rank:ndcg, + transitions", "xgboost", None,
        {"xgboost": {"transition_features": True}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, + transitions seen 3 times or more", "xgboost", None,
        {"xgboost": {"transition_features": True, "transition_min_count": 3}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, + transitions seen once or more", "xgboost", None,
        {"xgboost": {"transition_features": True, "transition_min_count": 1}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, without the EV file's features", "xgboost", None,
        {"xgboost": {"drop_features": ("emb_last_basket", "emb_history")}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, without aisle and department ids", "xgboost", None,
        {"xgboost": {"drop_features": ("p_aisle", "p_department")}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, without the next order's day and hour", "xgboost", None,
        {"xgboost": {"drop_features": ("next_dow", "next_hour")}},
        versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, no popular products as candidates", "xgboost", None,
        {"xgboost": {"explore": 0}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, 50 popular products as candidates", "xgboost", None,
        {"xgboost": {"explore": 50}}, versus="xgboost, + rank:ndcg",
    ),
    Variant(
        "xgboost, rank:ndcg, queries weighted as recall@10", "xgboost", None,
        {"xgboost": {"recall_weights": True}}, versus="xgboost, + rank:ndcg",
    ),
)  # fmt: skip


def data_and_embeddings(out: Path) -> tuple[Prepared, np.ndarray]:
    """Complete Journey imported and prepared over the whole catalogue, and the EV file learnt
    over the neural vocabulary (both cached in `out`)."""
    data_dir = out / "completejourney"
    if not (data_dir / "orders.parquet").is_file():
        basket = Path(sys.executable).parent / "basket"
        subprocess.run(
            [str(basket), "import", "completejourney", "--out", str(data_dir)], check=True
        )
    data = prepare(data_dir, VocabConfig())
    path = out / "embeddings.parquet"
    if not path.is_file():
        config = RunConfig()
        neural = neural_vocabulary(data.vocab, config.vocab)
        embed_products(data.splits.eval_inputs, neural, path, config.embed)
    return data, read_embeddings(path, data.vocab)


def run_variant(variant: Variant, data: Prepared, embeddings: np.ndarray) -> dict:
    """Tune on validation, refit, evaluate held out: metrics and per-customer recall@10."""
    started = time.perf_counter()
    config = load_config(overrides=variant.overrides)
    k = config.train.k
    n = len(data.vocab) if variant.top_n is None else min(variant.top_n, len(data.vocab))
    vocab = data.vocab.head(n)
    view = Prepared(data.splits, vocab, data.products, data.fingerprint, data.data_dir)
    tuning = tuning_set(view, embeddings[:n], config.valid_users)
    tuned = tune(variant.candidate, tuning, config)
    valid = validation_ranking(tuned.model, tuning, k)
    tuned.model.fit(refit_set(view, embeddings[:n]))
    targets = data.splits.eval_targets
    held = evaluate_candidate(tuned.model, data.splits.eval_inputs, targets, k)
    row = {
        "variant": variant.name,
        "products": n,
        "held_out_lines_covered": line_coverage(vocab, targets.product_ids),
        "valid_recall@10": valid[f"recall@{k}"],
        "valid_ndcg@10": valid[f"ndcg@{k}"],
        "recall@10": held.metrics[f"recall@{k}"],
        "ndcg@10": held.metrics[f"ndcg@{k}"],
        "recall_repeat@10": held.metrics[f"recall_repeat@{k}"],
        "recall_new@10": held.metrics[f"recall_new@{k}"],
        # Trees an answer walks (XGBoost): a serving request's cost grows with them.
        "trees": booster.best_iteration + 1
        if (booster := getattr(tuned.model, "booster", None))
        else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(row), flush=True)
    return row | {"_per_user": held.per_user[f"recall@{k}"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "levers"
    )
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data, embeddings = data_and_embeddings(args.out)
    chosen = [v for v in VARIANTS if args.only is None or v.name in args.only]
    rows = {v.name: run_variant(v, data, embeddings) for v in chosen}
    lines = [
        "| variant | products | held-out lines covered | valid recall@10 | valid NDCG@10 "
        "| recall@10 | NDCG@10 | repeat / new recall@10 | trees | recall@10 gain (95 % interval) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in chosen:
        row = rows[variant.name]
        gain = ""
        if variant.versus in rows:
            differences = row["_per_user"] - rows[variant.versus]["_per_user"]
            low, high = interval(bootstrap_means(differences[None, :], 1000)[:, 0], 0.95)
            row["gain"] = {"versus": variant.versus, "difference": float(differences.mean()),
                           "interval": [low, high]}  # fmt: skip
            gain = f"{differences.mean():+.4f} ({low:+.4f} to {high:+.4f})"
        lines.append(
            f"| {variant.name} | {row['products']:,} | {row['held_out_lines_covered']:.1%} "
            f"| {row['valid_recall@10']:.4f} | {row['valid_ndcg@10']:.4f} "
            f"| {row['recall@10']:.4f} | {row['ndcg@10']:.4f} "
            f"| {row['recall_repeat@10']:.3f} / {row['recall_new@10']:.3f} "
            f"| {row['trees'] or ''} | {gain} |"
        )
    text = "\n".join(lines)
    result = {
        "machine": describe_machine(),
        "households": int(data.splits.eval_targets.user_ids.size),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [{k: v for k, v in rows[v.name].items() if k != "_per_user"} for v in chosen],
    }
    (args.out / "levers.json").write_text(json.dumps(result, indent=1, default=float))
    (args.out / "levers.md").write_text(text + "\n")
    record(
        "levers",
        "What each XGBoost lever gives on Complete Journey",
        ["variant", "products", "valid recall@10", "valid NDCG@10", "recall@10", "NDCG@10",
         "trees", "recall@10 gain (95 % interval)"],
        [
            [v.name, rows[v.name]["products"], round(rows[v.name]["valid_recall@10"], 4),
             round(rows[v.name]["valid_ndcg@10"], 4), round(rows[v.name]["recall@10"], 4),
             round(rows[v.name]["ndcg@10"], 4), rows[v.name]["trees"],
             _gain_text(rows[v.name].get("gain"))]
            for v in chosen
        ],
        parameters={"households": result["households"], "seconds": result["seconds"]},
    )  # fmt: skip
    print(f"\nmachine: {result['machine']}\n{result['households']:,} households")
    print(text)
    print(f"done in {result['seconds']:.0f}s")


def _gain_text(gain: dict | None) -> str | None:
    """A paired gain as "+0.0012 (-0.0003 to +0.0027) over VARIANT", or None."""
    if not gain:
        return None
    low, high = gain["interval"]
    return f"{gain['difference']:+.4f} ({low:+.4f} to {high:+.4f}) over {gain['versus']}"


if __name__ == "__main__":
    main()
