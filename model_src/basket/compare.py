"""Compare every candidate on the one held-out split, pick the winner, write the report.

Every number comes from `basket.metrics` on the same evaluation users; no
candidate saw those baskets in training or tuning. The winner maximises the
primary metric (default recall@10), ties broken by NDCG at the same k.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basket.data.history import Histories, Targets
from basket.metrics import basket_f1, ranking_metrics, repeat_new_recall
from basket.plots import plot_candidates, plot_precision_recall_at_k

K_CURVE = 20


@dataclass(frozen=True)
class Comparison:
    """Metrics per candidate, precision/recall curves, and the winner."""

    metrics: dict[str, dict[str, float]]
    curves: dict[str, dict[str, list[float]]]
    winner: str
    primary_metric: str


def evaluate_candidate(model, inputs: Histories, targets: Targets, k: int) -> tuple[dict, dict]:
    """Held-out metrics of one Recommender, and its precision/recall at K = 1..20."""
    depth = max(k, K_CURVE)
    answer = model.recommend(inputs, depth)
    metrics = ranking_metrics(answer.product_ids, targets.offsets, targets.product_ids, k)
    seen_offsets, seen_ids = inputs.bought()
    metrics |= repeat_new_recall(
        answer.product_ids, targets.offsets, targets.product_ids, seen_offsets, seen_ids, k
    )
    basket = basket_f1(
        answer.basket_offsets, answer.basket_product_ids, targets.offsets, targets.product_ids
    )
    metrics |= {f"basket_{name}": value for name, value in basket.items()}
    curve = {"precision": [], "recall": []}
    for cut in range(1, K_CURVE + 1):
        at = ranking_metrics(answer.product_ids, targets.offsets, targets.product_ids, cut)
        curve["precision"].append(at[f"precision@{cut}"])
        curve["recall"].append(at[f"recall@{cut}"])
    return metrics, curve


def pick_winner(metrics: dict[str, dict[str, float]], primary: str, k: int = 10) -> str:
    """The candidate with the best `primary` metric; ties go to the best NDCG@k, then the name."""
    return sorted(
        metrics, key=lambda name: (-metrics[name][primary], -metrics[name][f"ndcg@{k}"], name)
    )[0]


def compare(
    models: dict, inputs: Histories, targets: Targets, k: int = 10, primary: str = "recall@10"
) -> Comparison:
    """Evaluate every model in `models` (name -> Recommender) on the same split."""
    metrics, curves = {}, {}
    for name, model in models.items():
        metrics[name], curves[name] = evaluate_candidate(model, inputs, targets, k)
    return Comparison(metrics, curves, pick_winner(metrics, primary, k), primary)


def report_columns(k: int) -> tuple[str, ...]:
    """The report's metric columns at `k`."""
    ranking = ("recall", "precision", "ndcg", "hit", "recall_repeat", "recall_new")
    return (*(f"{name}@{k}" for name in ranking), "basket_f1_samples", "basket_f1_micro")


def metric_k(primary: str) -> int:
    """The k of a metric key such as "recall@10"."""
    return int(primary.rpartition("@")[2])


def report_table(
    metrics: dict[str, dict[str, float]],
    primary: str = "recall@10",
    winner: str | None = None,
    columns=None,
) -> str:
    """Markdown table of held-out metrics, best `primary` first, the winner marked; the
    columns default to `report_columns` at the primary metric's k."""
    columns = columns or report_columns(metric_k(primary))
    order = sorted(metrics, key=lambda name: -metrics[name][primary])
    lines = ["| candidate | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in order:
        label = f"**{name}** (winner)" if name == winner else name
        values = " | ".join(f"{metrics[name].get(c, float('nan')):.4f}" for c in columns)
        lines.append(f"| {label} | {values} |")
    return "\n".join(lines)


def refit_table(
    tuned: dict[str, dict[str, float]], refit: dict[str, dict[str, float]], k: int
) -> str:
    """Markdown: recall@k and NDCG@k of each candidate as tuned and as refit (what ships)."""
    lines = [
        f"| candidate | recall@{k} tuned | recall@{k} refit | NDCG@{k} tuned | NDCG@{k} refit |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(tuned):
        before, after = tuned[name], refit[name]
        lines.append(
            f"| {name} | {before[f'recall@{k}']:.4f} | {after[f'recall@{k}']:.4f} "
            f"| {before[f'ndcg@{k}']:.4f} | {after[f'ndcg@{k}']:.4f} |"
        )
    return "\n".join(lines)


def write_report(
    comparison: Comparison,
    run_dir: Path,
    extra: dict | None = None,
    tuned: dict[str, dict[str, float]] | None = None,
) -> Path:
    """report.json, report.md and the PNG plots in `run_dir`; returns report.json's path.
    `tuned`: held-out metrics of the candidates before their refit, reported beside them."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "winner": comparison.winner,
        "primary_metric": comparison.primary_metric,
        "candidates": comparison.metrics,
        "curves": comparison.curves,
        "tuned_candidates": tuned or {},
        **(extra or {}),
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=1, default=_plain))
    k = metric_k(comparison.primary_metric)
    plot_candidates(comparison.metrics, comparison.winner, run_dir / "candidates.png", k)
    plot_precision_recall_at_k(comparison.curves, run_dir / "precision_recall_at_k.png")
    markdown = [
        "# basket retrain report",
        "",
        f"Winner: **{comparison.winner}** by {comparison.primary_metric} (ties: NDCG@{k}), "
        "on the held-out evaluation split (each customer's last known basket).",
        "",
        report_table(comparison.metrics, comparison.primary_metric, comparison.winner),
        "",
        "![metrics per candidate](candidates.png)",
        "",
        "![precision and recall at K](precision_recall_at_k.png)",
    ]
    if tuned:
        markdown += [
            "",
            "## What the refit gained",
            "",
            "Each candidate was tuned with labels up to the basket before each customer's "
            "validation basket, then refit (same epochs or rounds) with the validation basket as "
            "a label too. The refit is what was evaluated above and what ships; both are scored "
            "here on the same held-out baskets.",
            "",
            refit_table(tuned, {name: comparison.metrics[name] for name in tuned}, k),
        ]
    (run_dir / "report.md").write_text("\n".join(markdown) + "\n")
    return run_dir / "report.json"


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)
