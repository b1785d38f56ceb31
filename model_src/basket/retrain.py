"""The nightly pipeline without Airflow: validate, prepare, embed, train every candidate, compare.

`retrain(data_dir, run_dir, config)` writes `run_dir/report.json` (the contract
in DESIGN.md), `report.md`, plots, every candidate's model dir under
`run_dir/models/`, and the winner's under `run_dir/winner/`. On data that fails
validation it raises `ValidationFailed` before anything is trained; no winner
is written. Each candidate's basket decoding (tuned threshold or expected F1)
is chosen on the validation split; the comparison uses the evaluation split.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basket.config import RunConfig, config_dict
from basket.data.history import Histories, Targets
from basket.metrics import basket_f1
from basket.models.decoding import expected_f1_baskets, threshold_baskets

log = logging.getLogger(__name__)


class ValidationFailed(Exception):
    """The data did not pass validation; `report` holds the summary. Nothing was trained."""

    def __init__(self, report):
        self.report = report
        super().__init__(report.summary())


@dataclass(frozen=True)
class RetrainResult:
    """Where the run wrote its report and winner."""

    run_dir: Path
    report_path: Path
    winner: str
    winner_dir: Path
    seconds: float


def _basket_f1(rows: np.ndarray, cols: np.ndarray, vocab, targets: Targets) -> float:
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(targets.user_ids)))])
    return basket_f1(offsets, vocab.product_ids[cols], targets.offsets, targets.product_ids)[
        "f1_samples"
    ]


def choose_decoding(model, inputs: Histories, targets: Targets, thresholds) -> dict[str, float]:
    """Set `model`'s basket decoding to the best on the validation split; returns basket F1 per option."""
    scores = model.score(inputs)
    options = {}
    candidates = sorted({*thresholds, model.threshold})
    for threshold in candidates:
        options[f"threshold={threshold:g}"] = _basket_f1(
            *threshold_baskets(scores, threshold), model.vocab, targets
        )
    if hasattr(model, "decoding"):
        calibrated = model.calibrated(scores) if hasattr(model, "calibrated") else scores
        options["expected_f1"] = _basket_f1(*expected_f1_baskets(calibrated), model.vocab, targets)
    best = max(options, key=options.get)
    if best == "expected_f1":
        model.decoding = "expected_f1"
    else:
        model.threshold = float(best.split("=")[1])
        if hasattr(model, "decoding"):
            model.decoding = "threshold"
    return options


def _train_candidates(data, config: RunConfig, run_dir: Path) -> dict:
    """Every candidate, trained and tuned without the evaluation baskets."""
    from basket.embed import embed_products, read_embeddings
    from basket.models.tifu_knn import TifuKNN
    from basket.models.top_freq import PTopFreq
    from basket.models.xgb import XGBoostRecommender
    from basket.models.xgb_features import ProductTable
    from basket.plots import plot_grid
    from basket.train import grid_search

    splits, vocab = data.splits, data.vocab
    run_dir.mkdir(parents=True, exist_ok=True)
    embeddings = read_embeddings(
        embed_products(splits.eval_inputs, vocab, run_dir / "embeddings.parquet", config.embed),
        vocab,
    )
    models = {}
    for name in config.models:
        started = time.perf_counter()
        grid = grid_search(
            name, config.predictor, config.train, vocab, embeddings,
            splits.valid_inputs, splits.valid_inputs, splits.valid_targets,
        )  # fmt: skip
        (run_dir / "grid").mkdir(exist_ok=True)
        grid.table.to_csv(run_dir / "grid" / f"{name}_grid.csv", index=False)
        plot_grid(grid.table, config.train.k, name, run_dir / "grid" / f"{name}_grid.png")
        models[name] = grid.model
        log.info(
            "%s trained in %.0fs (pos_weight %g)",
            name,
            time.perf_counter() - started,
            grid.pos_weight,
        )
    if "xgboost" in config.baselines:
        started = time.perf_counter()
        products = ProductTable.build(splits.valid_inputs, vocab, data.tables.products, embeddings)
        models["xgboost"] = XGBoostRecommender(vocab, products, config.xgboost).fit(
            splits.valid_inputs, splits.valid_inputs, splits.valid_targets
        )
        log.info("xgboost trained in %.0fs", time.perf_counter() - started)
    if "p_topfreq" in config.baselines:
        models["p_topfreq"] = PTopFreq(vocab)
    if "tifu_knn" in config.baselines:
        models["tifu_knn"] = TifuKNN(vocab, config.tifu).fit(splits.valid_inputs)
    return models


def retrain(
    data_dir: Path | str, run_dir: Path | str, config: RunConfig | None = None
) -> RetrainResult:
    """The whole pipeline on `data_dir`; see the module docstring for what lands in `run_dir`."""
    from basket.compare import compare, write_report
    from basket.data.prepare import prepare
    from basket.train import model_version
    from basket.validate import validate

    config = config or RunConfig()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stages: dict[str, float] = {}

    def stage(name: str, began: float) -> None:
        stages[name] = round(time.perf_counter() - began, 1)
        log.info("stage %s done in %.0fs", name, stages[name])

    began = time.perf_counter()
    validation = validate(data_dir, report_dir=run_dir / "validation")
    stage("validate", began)
    if not validation.success:
        raise ValidationFailed(validation)

    began = time.perf_counter()
    data = prepare(data_dir, config.vocab)
    record = {
        "config": config_dict(config),
        "data_dir": str(data_dir),
        "data_fingerprint": data.fingerprint,
    }
    (run_dir / "config.json").write_text(json.dumps(record, indent=1))
    stage("prepare", began)

    began = time.perf_counter()
    models = _train_candidates(data, config, run_dir)
    stage("train", began)

    began = time.perf_counter()
    decodings = {
        name: choose_decoding(
            model, data.splits.valid_inputs, data.splits.valid_targets, config.basket_thresholds
        )
        for name, model in models.items()
    }
    # The neighbour database may hold every customer's inputs: the evaluation baskets stay out.
    if "tifu_knn" in models:
        models["tifu_knn"].fit(data.splits.eval_inputs)
    comparison = compare(
        models,
        data.splits.eval_inputs,
        data.splits.eval_targets,
        config.train.k,
        config.primary_metric,
    )
    stage("compare", began)

    model_dirs = {}
    for name, model in models.items():
        extra = {
            "name": name,
            "version": model_version(name, data.fingerprint),
            "metrics": comparison.metrics[name],
            "data_fingerprint": data.fingerprint,
            "decoding_on_validation": decodings[name],
        }
        model_dirs[name] = model.save(run_dir / "models" / name, extra=extra)
    winner_dir = run_dir / "winner"
    if winner_dir.exists():
        shutil.rmtree(winner_dir)
    shutil.copytree(model_dirs[comparison.winner], winner_dir)

    seconds = time.perf_counter() - started
    report_path = write_report(
        comparison,
        run_dir,
        extra={
            "k": config.train.k,
            "data_fingerprint": data.fingerprint,
            "users_evaluated": int(data.splits.eval_targets.user_ids.size),
            "decodings_on_validation": decodings,
            "stage_seconds": stages,
            "seconds": round(seconds, 1),
        },
    )
    log.info("winner: %s", comparison.winner)
    return RetrainResult(run_dir, report_path, comparison.winner, winner_dir, seconds)
