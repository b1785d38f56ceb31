"""Plots people would rather look at than read: grid searches and comparisons, as PNG files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_grid(table: pd.DataFrame, k: int, title: str, path: Path) -> Path:
    """PNG: precision@k and recall@k (top-k cut at each threshold) and f1_micro against pos_weight."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
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
    plt.close(figure)
    return path
