"""The ranker's levers and settings, chosen per run on that run's validation baskets.

A coordinate search from XGBConfig's values (`RunConfig.ranker_search`): the
levers first (TIFU-KNN stacked as features, the repurchase kernel's features),
then depth, learning rate, leaf weight, cut points per customer and the
candidate pool, one at a time. Each value is one fit, with early stopping, on a
fixed sample of at most `users` customers, scored by recall@k (ties: NDCG@k) on
their validation baskets; it is kept only where it beats the best so far. No fit
starts once the time budget is spent, so a large shop tries fewer values, and a
small one all of them. Every value tried is a row of the table that lands in
RUN/grid/xgboost_grid.csv, with its paired gain over the best setting of the moment
and that gain's 95 % interval; the report names the levers kept
(`basket.training.compare`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import fields, replace

import pandas as pd

from basket.config.run import RunConfig, TifuConfig, XGBConfig
from basket.models.base import TrainingSet
from basket.models.metrics import per_user_ranking
from basket.models.xgb import XGBoostRecommender
from basket.training.significance import paired_gain

log = logging.getLogger(__name__)
# RankerSearch's fields that are not settings to search.
NOT_SEARCHED = ("users", "seconds", "seed")
LEVERS = ("neighbour_features", "repurchase_features")  # the report's levers


def searched_settings(config: RunConfig) -> tuple[str, ...]:
    """XGBConfig settings `config.ranker_search` tries, in the order it tries them."""
    return tuple(f.name for f in fields(config.ranker_search) if f.name not in NOT_SEARCHED)


def search_ranker(
    data: TrainingSet, config: RunConfig, tifu_settings: Callable[[], TifuConfig]
) -> tuple[XGBoostRecommender, pd.DataFrame, list[dict]]:
    """The ranker with the settings the search chooses, fitted on `data`; the table of every
    setting tried; and the levers' records (`lever`: what each lever and the settings'
    search gained on validation, and whether the ranker uses it). `tifu_settings()` gives
    the neighbour features' TIFU-KNN settings (called only when a setting stacks it)."""
    search, k = config.ranker_search, config.train.k
    searched = data.sample(search.users, search.seed)
    inputs, targets = searched.validation()
    started = time.perf_counter()
    tried: dict[XGBConfig, dict] = {}

    def fitted(setting: XGBConfig, on: TrainingSet) -> XGBoostRecommender:
        tifu = tifu_settings() if setting.neighbour_features else None
        return XGBoostRecommender(data.vocab, setting, tifu_config=tifu).fit(on)

    def measure(setting: XGBConfig) -> dict:
        if setting not in tried:
            began = time.perf_counter()
            model = fitted(setting, searched)
            ranked = model.recommend(inputs, k).product_ids
            per_user = per_user_ranking(ranked, targets.offsets, targets.product_ids, k)
            tried[setting] = {
                "model": model,
                "per_user": per_user,
                "recall": float(per_user[f"recall@{k}"].mean()),
                "ndcg": float(per_user[f"ndcg@{k}"].mean()),
                "seconds": time.perf_counter() - began,
            }
        return tried[setting]

    def better(setting: XGBConfig, than: XGBConfig) -> bool:
        new, old = measure(setting), measure(than)
        return (new["recall"], new["ndcg"]) > (old["recall"], old["ndcg"])

    best, rows, levers = config.xgboost, [], []
    if search.seconds > 0:
        start = measure(best)
        rows.append(_row("(start)", "XGBConfig's values", start, start, True, k, config))
    for name in searched_settings(config):
        if name not in LEVERS and not any(lever["setting"] == "settings" for lever in levers):
            levers.append({"setting": "settings", "from": best})
        for value in getattr(search, name):
            setting = replace(best, **{name: value})
            if setting in tried:
                continue
            if time.perf_counter() - started > search.seconds:
                break
            versus = best
            keep = better(setting, versus)
            rows.append(_row(name, value, measure(setting), measure(versus), keep, k, config))
            log.info(
                "ranker search: %s = %s: valid recall@%d %.4f (best so far %.4f)%s, %.0fs so far",
                name, value, k, measure(setting)["recall"], measure(versus)["recall"],
                ", kept" if keep else "", time.perf_counter() - started,
            )  # fmt: skip
            if keep:
                best = setting
    for row in rows:
        if row["setting"] in LEVERS and row["value"] != getattr(config.xgboost, row["setting"]):
            used = getattr(best, row["setting"]) == row["value"]
            levers.append(lever(LEVER_NAMES[row["setting"]], row, used))
    settings = next((lever for lever in levers if lever["setting"] == "settings"), None)
    levers = [lever for lever in levers if lever.get("setting") != "settings"]
    if settings is not None and settings["from"] in tried:
        searched_row = _row("settings", "", measure(best), measure(settings["from"]), True, k,
                            config)  # fmt: skip
        changed = {
            name: getattr(best, name)
            for name in searched_settings(config)
            if name not in LEVERS and getattr(best, name) != getattr(settings["from"], name)
        }
        levers.append(lever(
            "ranker settings searched (" + (", ".join(f"{n} {v}" for n, v in changed.items())
                                           or "the defaults kept") + ")",
            searched_row, bool(changed),
        ))  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["chosen"] = [
        best == config.xgboost
        if row.setting == "(start)"
        else getattr(best, row.setting) == row.value
        for row in table.itertuples()
    ]
    if best in tried and searched is data:
        return tried[best]["model"], table, levers
    log.info("ranker: the chosen settings fitted on every customer")
    return fitted(best, data), table, levers


LEVER_NAMES = {
    "neighbour_features": "TIFU-KNN's scores as ranker features",
    "repurchase_features": "the repurchase kernel's features",
}


def lever(name: str, row: dict, used: bool) -> dict:
    """A lever's record, as the report shows it: its validation gain (recall@k) over not
    using it, that gain's interval, and whether the model uses it. A row that tried a lever
    off (its value False) measured the opposite gain."""
    gain, low, high = row["gain"], row["gain_low"], row["gain_high"]
    if row["value"] is False:
        gain, low, high = -gain, -high, -low
    return {
        "lever": name, "gain": gain, "gain_low": low, "gain_high": high,
        "customers": row["customers"], "used": used,
    }  # fmt: skip


COLUMNS = (
    "setting", "value", "valid_recall", "valid_ndcg", "versus_recall", "gain", "gain_low",
    "gain_high", "kept", "customers", "seconds",
)  # fmt: skip


def _row(name, value, new: dict, old: dict, kept: bool, k: int, config: RunConfig) -> dict:
    """One table row: the value tried, its validation metrics, its paired gain over `old`."""
    key = f"recall@{k}"
    gain, low, high = paired_gain(
        new["per_user"][key], old["per_user"][key], config.confidence, config.bootstrap_samples
    )
    return {
        "setting": name, "value": value, "valid_recall": new["recall"],
        "valid_ndcg": new["ndcg"], "versus_recall": old["recall"], "gain": gain,
        "gain_low": low, "gain_high": high, "kept": kept,
        "customers": len(new["per_user"][key]), "seconds": round(new["seconds"], 1),
    }  # fmt: skip
