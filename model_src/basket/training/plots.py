"""Plots people would rather look at than read: grid searches and comparisons, as PNG files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from basket.config.run import TrainConfig


def plot_grid(table: pd.DataFrame, epochs: pd.DataFrame, k: int, title: str, path: Path) -> Path:
    """PNG: validation recall@k and NDCG@k against pos_weight (the chosen one starred), and
    validation recall@k per epoch of each fit with its learning rate (the kept epochs ringed)."""
    figure = Figure(figsize=(12, 4.2))
    left, right = figure.subplots(1, 2)
    for column in (f"recall@{k}", f"ndcg@{k}"):
        left.plot(table["pos_weight"], table[column], marker="o", label=column)
    chosen = table[table["chosen"]].iloc[0]
    left.plot(chosen["pos_weight"], chosen[f"recall@{k}"], "k*", markersize=14, label="chosen")
    left.set_xlabel("pos_weight")
    left.set_ylabel("validation")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    recall = f"valid_recall@{k}"
    if "all_customers" in epochs:  # the grid's fits only, not the final fit on everyone
        epochs = epochs[epochs["all_customers"].isna()]
    for pos_weight, fit in epochs.groupby("pos_weight"):
        line = right.plot(fit["epoch"], fit[recall], marker="o", label=f"pos_weight {pos_weight:g}")
        kept = fit[fit["kept"]]
        right.plot(kept["epoch"], kept[recall], "o", mfc="none", ms=13, color=line[0].get_color())
        for _, row in fit.iterrows():
            right.annotate(f"{row['lr']:.0e}", (row["epoch"], row[recall]), fontsize=6)
    right.set_xlabel("epoch (labels: learning rate)")
    right.set_ylabel(recall)
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    figure.suptitle(f"{title}: chosen pos_weight {chosen['pos_weight']:g} (validation baskets)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def plot_candidates(
    metrics: dict[str, dict[str, float]], winner: str, path: Path, k: int = TrainConfig.k
) -> Path:
    """One panel per metric (recall@k, NDCG@k, precision@k): each candidate's value with its
    95 % interval where known, on an axis zoomed to the values (a 0-1 axis hides every
    difference that matters); the winner in black."""
    columns = [f"recall@{k}", f"ndcg@{k}", f"precision@{k}"]
    names = sorted(metrics, key=lambda n: metrics[n][f"recall@{k}"])
    figure = Figure(figsize=(13, 0.5 * len(names) + 2.2))
    for axis, column in zip(figure.subplots(1, len(columns), sharey=True), columns, strict=True):
        for row, name in enumerate(names):
            value = metrics[name][column]
            low, high = (
                metrics[name].get(f"{column}_low", value),
                metrics[name].get(f"{column}_high", value),
            )
            colour = "black" if name == winner else "tab:blue"
            axis.errorbar(
                value, row, xerr=[[value - low], [high - value]], fmt="o", color=colour, capsize=4
            )
        axis.set_title(column)
        axis.grid(axis="x", alpha=0.3)
    axis.set_yticks(range(len(names)))
    axis.set_yticklabels([f"{n} (winner)" if n == winner else n for n in names])
    figure.suptitle("held-out metrics per candidate, with 95 % paired-bootstrap intervals")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def plot_precision_recall_at_k(curves: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """Precision@K and recall@K for K = 1..20, one line per candidate."""
    figure = Figure(figsize=(11, 4))
    axes = figure.subplots(1, 2)
    for name, curve in curves.items():
        ks = range(1, len(curve["precision"]) + 1)
        axes[0].plot(ks, curve["precision"], marker=".", label=name)
        axes[1].plot(ks, curve["recall"], marker=".", label=name)
    for axis, label in zip(axes, ("precision@K", "recall@K"), strict=True):
        axis.set_xticks(range(1, 21))
        axis.set_xlabel("K")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
