"""Plots people would rather look at than read: grid searches and comparisons, as PNG files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def plot_grid(table: pd.DataFrame, k: int, title: str, path: Path) -> Path:
    """PNG: precision@k and recall@k (top-k cut at each threshold) and f1_micro against pos_weight."""
    figure = Figure(figsize=(15, 4.2))
    axes = figure.subplots(1, 3)
    panels = [
        (f"precision@{k}_thresholded", f"precision@{k}", f"precision@{k}"),
        (f"recall@{k}_thresholded", f"recall@{k}", f"recall@{k}"),
        ("f1_micro", None, "f1_micro (thresholded basket)"),
    ]
    for axis, (column, plain, label) in zip(axes, panels, strict=True):
        for threshold, group in table.groupby("threshold"):
            axis.plot(
                group["pos_weight"], group[column], marker="o", label=f"threshold {threshold:g}"
            )
        if plain is not None:
            ranking = table.groupby("pos_weight")[plain].first()
            axis.plot(ranking.index, ranking.values, "k--", label=f"top-{k}, no threshold")
        axis.set_xlabel("pos_weight")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    chosen = table[table["chosen"]].iloc[0]
    figure.suptitle(
        f"{title}: chosen pos_weight {chosen['pos_weight']:g}, threshold {chosen['threshold']:g} (validation split)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def plot_candidates(
    metrics: dict[str, dict[str, float]], winner: str, path: Path, k: int = 10
) -> Path:
    """Grouped bars: recall@k, precision@k, NDCG@k and basket F1 per candidate."""
    columns = [f"recall@{k}", f"precision@{k}", f"ndcg@{k}", "basket_f1_samples"]
    names = sorted(metrics, key=lambda n: -metrics[n][f"recall@{k}"])
    figure = Figure(figsize=(10, 4.2))
    axis = figure.subplots()
    width = 0.8 / len(columns)
    for i, column in enumerate(columns):
        values = [metrics[n].get(column, 0.0) for n in names]
        axis.bar([x + i * width for x in range(len(names))], values, width, label=column)
    axis.set_xticks([x + width * (len(columns) - 1) / 2 for x in range(len(names))])
    axis.set_xticklabels([f"{n}\n(winner)" if n == winner else n for n in names])
    axis.set_ylim(0, 1)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncol=4, loc="upper right")
    axis.set_title("held-out metrics per candidate")
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
