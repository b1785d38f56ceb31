"""Compare every candidate on the one held-out split, pick the winner, write the report.

Every number comes from `basket.models.metrics` on the same evaluation users; no
candidate saw those baskets in training or tuning. Each metric comes with a 95 %
paired-bootstrap interval over customers, and the winner is the simplest
candidate within the noise of the best primary metric (`basket.training.significance`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from basket.config.candidates import NEURAL, SIMPLICITY
from basket.config.run import RunConfig, TrainConfig
from basket.data.history import Histories, Targets
from basket.models.metrics import (
    averages,
    basket_f1,
    per_user_ranking,
    precision_recall_curve,
    repeat_new_recall,
)
from basket.training.plots import plot_candidates, plot_precision_recall_at_k
from basket.training.significance import Significance, bootstrap_means, interval, significance

log = logging.getLogger(__name__)
K_CURVE = 20
# The order of preference among candidates within the noise of the best: cheaper to train and
# serve, and easier to explain, first.


@dataclass(frozen=True)
class Comparison:
    """Metrics per candidate, precision/recall curves, and the winner."""

    metrics: dict[str, dict[str, float]]
    curves: dict[str, dict[str, list[float]]]
    winner: str
    primary_metric: str
    k: int  # the run's one k: every metric of the report is at it
    significance: Significance | None = None
    # The best neural candidate against the best other one (None when either kind is missing).
    neural_gain: dict | None = None
    # name -> metric -> the value of each evaluated customer with a non-empty held-out basket.
    per_user: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """One candidate on the held-out split: mean metrics, precision/recall at K = 1..20, and
    the ranking metrics of each customer (for the bootstrap)."""

    metrics: dict[str, float]
    curve: dict[str, list[float]]
    per_user: dict[str, np.ndarray]


def evaluate_candidate(
    model,
    inputs: Histories,
    targets: Targets,
    k: int,
    bought: tuple[np.ndarray, np.ndarray] | None = None,
) -> Evaluation:
    """Held-out metrics of one Recommender, its precision/recall curve and per-customer metrics.
    `bought` is `inputs.bought()` when the caller has it (it is the same for every candidate)."""
    depth = max(k, K_CURVE)
    started = time.perf_counter()
    answer = model.recommend(inputs, depth)
    log.info(
        "evaluated %s on %d customers in %.0fs",
        model.kind, inputs.n_users, time.perf_counter() - started,
    )  # fmt: skip
    per_user = per_user_ranking(answer.product_ids, targets.offsets, targets.product_ids, k)
    metrics = averages(per_user)
    seen_offsets, seen_ids = inputs.bought() if bought is None else bought
    metrics |= repeat_new_recall(
        answer.product_ids, targets.offsets, targets.product_ids, seen_offsets, seen_ids, k
    )
    basket = basket_f1(
        answer.basket_offsets, answer.basket_product_ids, targets.offsets, targets.product_ids
    )
    metrics |= {f"basket_{name}": value for name, value in basket.items()}
    curve = precision_recall_curve(
        answer.product_ids, targets.offsets, targets.product_ids, K_CURVE
    )
    return Evaluation(metrics, curve, per_user)


def compare(
    models: dict,
    inputs: Histories,
    targets: Targets,
    k: int = TrainConfig.k,
    primary: str = RunConfig().primary_key,
    confidence: float = 0.95,
    samples: int = 1000,
    simplicity: tuple[str, ...] = SIMPLICITY,
) -> Comparison:
    """Evaluate every model in `models` (name -> Recommender) on the same split; the winner is
    the simplest candidate within the noise of the best `primary` (ties: NDCG@k)."""
    bought = inputs.bought()
    evaluations = {
        name: evaluate_candidate(model, inputs, targets, k, bought)
        for name, model in models.items()
    }
    sure = significance(
        {name: e.per_user for name, e in evaluations.items()},
        primary, f"ndcg@{k}", simplicity, confidence, samples,
    )  # fmt: skip
    for name, evaluation in evaluations.items():
        for metric, (low, high) in sure.intervals[name].items():
            evaluation.metrics[f"{metric}_low"], evaluation.metrics[f"{metric}_high"] = low, high
    metrics = {name: e.metrics for name, e in evaluations.items()}
    curves = {name: e.curve for name, e in evaluations.items()}
    per_user = {name: e.per_user for name, e in evaluations.items()}
    primary_per_user = {name: values[primary] for name, values in per_user.items()}
    gain = neural_gain(primary_per_user, metrics, primary, confidence, samples)
    return Comparison(metrics, curves, sure.winner, primary, k, sure, gain, per_user)


def neural_gain(
    per_user: dict[str, np.ndarray],
    metrics: dict[str, dict[str, float]],
    primary: str,
    confidence: float,
    samples: int,
) -> dict | None:
    """The best neural candidate's `primary` minus the best other candidate's, paired over
    customers with its bootstrap interval; None unless both kinds were compared."""
    neural = [name for name in per_user if name in NEURAL]
    other = [name for name in per_user if name not in NEURAL]
    if not neural or not other:
        return None
    best_neural = max(neural, key=lambda name: metrics[name][primary])
    best_other = max(other, key=lambda name: metrics[name][primary])
    differences = per_user[best_neural] - per_user[best_other]
    low, high = interval(bootstrap_means(differences[None, :], samples)[:, 0], confidence)
    return {
        "neural": best_neural,
        "other": best_other,
        "difference": float(differences.mean()),
        "interval": (low, high),
    }


def neural_verdict(gain: dict, primary: str) -> str:
    """One sentence on whether the neural nets add anything, from `neural_gain`."""
    low, high = gain["interval"]
    numbers = (
        f"{gain['neural']} {primary} {gain['difference']:+.4f} against {gain['other']} "
        f"(interval {low:+.4f} to {high:+.4f})"
    )
    if low > 0:
        return f"The neural nets add something: {numbers}, beyond the noise."
    if high < 0:
        return f"The neural nets add nothing: {numbers}, worse beyond the noise."
    return f"The neural nets add nothing beyond the noise: {numbers}."


def report_columns(k: int) -> tuple[str, ...]:
    """The report's metric columns at `k`."""
    ranking = ("recall", "precision", "ndcg", "hit", "recall_repeat", "recall_new")
    return (*(f"{name}@{k}" for name in ranking), "basket_f1_samples", "basket_f1_micro")


def report_table(
    metrics: dict[str, dict[str, float]],
    primary: str = RunConfig().primary_key,
    winner: str | None = None,
    k: int = TrainConfig.k,
) -> str:
    """Markdown table of held-out metrics, best `primary` first, the winner marked, the
    columns of `report_columns(k)`."""
    columns = report_columns(k)
    order = sorted(metrics, key=lambda name: -metrics[name][primary])
    lines = ["| candidate | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in order:
        label = f"**{name}** (winner)" if name == winner else name
        values = " | ".join(_cell(metrics[name], c) for c in columns)
        lines.append(f"| {label} | {values} |")
    return "\n".join(lines)


def _cell(metrics: dict[str, float], column: str) -> str:
    """The value, with its 95 % interval where the comparison computed one."""
    value = f"{metrics.get(column, float('nan')):.4f}"
    if f"{column}_low" in metrics:
        value += f" ({metrics[column + '_low']:.3f}–{metrics[column + '_high']:.3f})"
    return value


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
    refit_on_same: dict[str, dict[str, float]] | None = None,
) -> Path:
    """report.json, report.md and the PNG plots in `run_dir`; returns report.json's path.
    `tuned`: held-out metrics of the candidates before their refit, reported beside those of
    the refit candidates on the same customers, `refit_on_same` (default: every customer's,
    `comparison.metrics`, when `tuned` was measured on all of them)."""
    refit_on_same = refit_on_same or {name: comparison.metrics[name] for name in tuned or {}}
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "winner": comparison.winner,
        "primary_metric": comparison.primary_metric,
        "k": comparison.k,
        "candidates": comparison.metrics,
        "curves": comparison.curves,
        "tuned_candidates": tuned or {},
        "refit_candidates_on_the_same_customers": refit_on_same,
        "significance": _significance_record(comparison),
        "neural_gain": comparison.neural_gain,
        **(extra or {}),
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=1, default=_plain))
    k = comparison.k
    plot_candidates(comparison.metrics, comparison.winner, run_dir / "candidates.png", k)
    plot_precision_recall_at_k(comparison.curves, run_dir / "precision_recall_at_k.png")
    markdown = [
        "# basket retrain report",
        "",
        f"Winner: **{comparison.winner}** by {comparison.primary_metric} (ties: NDCG@{k}), "
        "on the held-out evaluation split (each customer's last known basket).",
        "",
        comparison.significance.explanation(comparison.primary_metric)
        if comparison.significance
        else "",
        "",
        neural_verdict(comparison.neural_gain, comparison.primary_metric)
        if comparison.neural_gain
        else "",
        "",
        "Values with their 95 % paired-bootstrap interval over customers:",
        "",
        report_table(comparison.metrics, comparison.primary_metric, comparison.winner, k),
        "",
        "![metrics per candidate, with intervals](candidates.png)",
        "",
        "![precision and recall at K](precision_recall_at_k.png)",
    ]
    evaluated, held_out = (extra or {}).get("users_evaluated"), (extra or {}).get("users_held_out")
    if evaluated and held_out and evaluated < held_out:
        markdown += [
            "",
            f"Scored on a fixed random sample of {evaluated:,} of the {held_out:,} held-out "
            "customers (`eval_users`); the intervals are this sample's.",
        ]
    vocabulary = (extra or {}).get("vocabulary")
    if vocabulary:
        markdown += ["", vocabulary_line(vocabulary)]
    levers = (extra or {}).get("levers") or {}
    if any(levers.values()):
        markdown += [
            "",
            "## Levers chosen on validation",
            "",
            *levers_section(levers, comparison.winner),
        ]
    if tuned:
        markdown += [
            "",
            "## What the refit gained",
            "",
            "Each candidate was tuned with labels up to the basket before each customer's "
            "validation basket, then refit (same epochs or rounds) with the validation basket as "
            "a label too. The refit is what was evaluated above and what ships; both are scored "
            "here on the same held-out baskets (a fixed sample of customers in large runs: "
            "`refit_gain_users`).",
            "",
            refit_table(tuned, refit_on_same, k),
        ]
    (run_dir / "report.md").write_text("\n".join(markdown) + "\n")
    return run_dir / "report.json"


def levers_section(levers: dict[str, list[dict]], winner: str) -> list[str]:
    """The report's lines on the levers: which inputs the shipped model uses and why (one
    sentence), then each candidate's levers with their validation gain and its interval."""
    mine = levers.get(winner) or []
    used = [lever["lever"] for lever in mine if lever["used"]]
    left = [lever["lever"] for lever in mine if not lever["used"]]
    if mine:
        sentence = (
            f"The shipped model, {winner}, uses "
            + ("; ".join(used) if used else "none of its optional inputs")
            + (f", and not {'; '.join(left)}" if left else "")
            + ": each was kept only where it raised recall on this run's validation baskets."
        )
    else:
        sentence = f"The shipped model, {winner}, has no optional inputs to choose."
    rows = [
        "| candidate | lever | used | validation gain in recall (95 % interval) | customers |",
        "|---|---|---|---|---|",
    ] + [
        f"| {name} | {lever['lever']} | {'yes' if lever['used'] else 'no'} "
        f"| {lever['gain']:+.4f} ({lever['gain_low']:+.4f} to {lever['gain_high']:+.4f}) "
        f"| {lever['customers']:,} |"
        for name, records in levers.items()
        for lever in records
    ]
    return [sentence, "", *rows]


def vocabulary_line(vocabulary: dict) -> str:
    """One sentence: what the vocabulary and the neural output layer hold."""
    return (
        f"Vocabulary: {vocabulary['products']:,} products, every one the inputs bought; "
        f"{vocabulary['held_out_lines_covered']:.1%} of the held-out lines are among them (the "
        f"rest were never bought before). The neural output layer holds the "
        f"{vocabulary['neural_output_layer']:,} most bought ({vocabulary['neural_line_share']:.1%}"
        f" of the inputs' lines, {vocabulary['held_out_lines_in_the_neural_output_layer']:.1%} "
        f"of the held-out ones); the repeat gate scores a customer's products beyond it."
    )


def _significance_record(comparison: Comparison) -> dict:
    """The winner rule's inputs and outcome, for report.json."""
    sure = comparison.significance
    if sure is None:
        return {}
    return {
        "rule": "the simplest candidate within the noise of the best primary metric",
        "confidence": sure.confidence,
        "bootstrap_samples": sure.samples,
        "best": sure.best,
        "within_noise": list(sure.within_noise),
        "winner": sure.winner,
        "runner_up": sure.runner_up,
        "to_winner": sure.to_winner,
        "explanation": sure.explanation(comparison.primary_metric),
    }


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)
