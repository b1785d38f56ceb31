"""The nightly pipeline as stages: validate, prepare, embed, train each candidate, compare.

Each stage is a plain function from the run folder (and data folder) to files in
it, so `basket retrain` runs them one after the other in one process and the
Airflow DAG runs the same functions as separate, retryable tasks:

    validate_stage  data ─► RUN/validation/            (raises ValidationFailed on bad data)
    prepare_stage   data ─► RUN/prepared/, RUN/config.json
    embed_stage          ─► RUN/embeddings.parquet     (the EV file)
    train_stage     NAME ─► RUN/candidates/NAME/       (decoding chosen on validation)
    compare_stage        ─► RUN/models/NAME/, RUN/winner/, RUN/report.json, report.md, plots

On data that fails validation nothing after it runs and no winner is written.
Candidates never see an evaluation basket; the comparison uses only those.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basket.atomic import atomic_dir, write_json_atomically
from basket.compare import compare, write_report
from basket.config import RunConfig, config_dict
from basket.data.history import Histories, Targets
from basket.data.prepare import Prepared, prepare
from basket.embed import embed_products, read_embeddings
from basket.metrics import basket_f1
from basket.models.decoding import expected_f1_baskets, threshold_baskets
from basket.models.registry import load_model
from basket.models.tifu_knn import TifuKNN
from basket.models.top_freq import PTopFreq
from basket.models.xgb import XGBoostRecommender
from basket.models.xgb_features import ProductTable
from basket.plots import plot_grid
from basket.train import grid_search, model_version
from basket.validate import validate

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


def train_candidate(name: str, data: Prepared, embeddings, config: RunConfig, run_dir: Path):
    """One candidate trained without the evaluation baskets, its decoding chosen on validation.

    Returns (model, basket F1 of each decoding option on the validation split).
    """
    splits, vocab = data.splits, data.vocab
    started = time.perf_counter()
    if name in NEURAL:
        grid = grid_search(
            name, config.predictor, config.train, vocab, embeddings,
            splits.valid_inputs, splits.valid_inputs, splits.valid_targets,
        )  # fmt: skip
        (run_dir / "grid").mkdir(parents=True, exist_ok=True)
        grid.table.to_csv(run_dir / "grid" / f"{name}_grid.csv", index=False)
        plot_grid(grid.table, config.train.k, name, run_dir / "grid" / f"{name}_grid.png")
        model = grid.model
    elif name == "xgboost":
        products = ProductTable.build(splits.valid_inputs, vocab, data.products, embeddings)
        model = XGBoostRecommender(vocab, products, config.xgboost).fit(
            splits.valid_inputs, splits.valid_inputs, splits.valid_targets
        )
    elif name == "p_topfreq":
        model = PTopFreq(vocab)
    elif name == "tifu_knn":
        model = TifuKNN(vocab, config.tifu).fit(splits.valid_inputs)
    else:
        raise ValueError(f"unknown candidate {name!r}; known: {', '.join(ALL_CANDIDATES)}")
    decodings = choose_decoding(
        model, splits.valid_inputs, splits.valid_targets, config.basket_thresholds
    )
    log.info("%s trained in %.0fs", name, time.perf_counter() - started)
    return model, decodings


NEURAL = ("cnngru", "attentiongru")
ALL_CANDIDATES = (*NEURAL, "xgboost", "p_topfreq", "tifu_knn")


def candidate_names(config: RunConfig) -> tuple[str, ...]:
    """The candidates a run trains: the neural models and the baselines of `config`."""
    return (*config.models, *config.baselines)


def _record_stage(run_dir: Path, name: str, began: float) -> None:
    """Write a stage's seconds to RUN/stages/NAME.json: one file per stage, because stages run
    as parallel tasks in separate processes (a shared file would lose updates)."""
    seconds = round(time.perf_counter() - began, 1)
    write_json_atomically(run_dir / "stages" / f"{name}.json", {"stage": name, "seconds": seconds})
    log.info("stage %s done in %.0fs", name, seconds)


def stage_seconds(run_dir: Path | str) -> dict[str, float]:
    """{stage: seconds} of every stage of RUN that finished, in the order they finished."""
    paths = sorted(Path(run_dir).glob("stages/*.json"), key=lambda p: p.stat().st_mtime_ns)
    records = [json.loads(p.read_text()) for p in paths]
    return {record["stage"]: record["seconds"] for record in records}


def validate_stage(data_dir: Path | str, run_dir: Path | str) -> Path:
    """Validate `data_dir` (report in RUN/validation); raise `ValidationFailed` on bad data."""
    run_dir = Path(run_dir)
    began = time.perf_counter()
    report = validate(data_dir, report_dir=run_dir / "validation")
    _record_stage(run_dir, "validate", began)
    if not report.success:
        raise ValidationFailed(report)
    return run_dir / "validation"


def prepare_stage(data_dir: Path | str, run_dir: Path | str, config: RunConfig) -> Path:
    """Histories, splits and vocabulary of `data_dir` into RUN/prepared; the config into RUN/config.json."""
    run_dir = Path(run_dir)
    began = time.perf_counter()
    data = prepare(data_dir, config.vocab, quarantine=run_dir / "validation" / "quarantine")
    folder = data.save(run_dir / "prepared")
    record = {
        "config": config_dict(config),
        "data_dir": str(data_dir),
        "data_fingerprint": data.fingerprint,
    }
    write_json_atomically(run_dir / "config.json", record)
    _record_stage(run_dir, "prepare", began)
    return folder


def embed_stage(run_dir: Path | str, config: RunConfig) -> Path:
    """The EV file, RUN/embeddings.parquet, learnt from the evaluation inputs of RUN/prepared."""
    run_dir = Path(run_dir)
    began = time.perf_counter()
    data = Prepared.load(run_dir / "prepared")
    path = embed_products(
        data.splits.eval_inputs, data.vocab, run_dir / "embeddings.parquet", config.embed
    )
    _record_stage(run_dir, "embed", began)
    return path


def train_stage(run_dir: Path | str, names, config: RunConfig) -> list[Path]:
    """Train the candidates `names` from RUN/prepared and the EV file into RUN/candidates/NAME."""
    run_dir = Path(run_dir)
    data = Prepared.load(run_dir / "prepared")
    embeddings = read_embeddings(run_dir / "embeddings.parquet", data.vocab)
    written = []
    for name in names:
        began = time.perf_counter()
        model, decodings = train_candidate(name, data, embeddings, config, run_dir)
        extra = {"name": name, "decoding_on_validation": decodings}
        written.append(model.save(run_dir / "candidates" / name, extra=extra))
        _record_stage(run_dir, f"train_{name}", began)
    return written


def compare_stage(run_dir: Path | str, config: RunConfig) -> RetrainResult:
    """Evaluate every trained candidate in RUN/candidates on the evaluation split; write
    RUN/models/NAME (with version and metrics), RUN/winner and the report."""
    run_dir = Path(run_dir)
    began = time.perf_counter()
    data = Prepared.load(run_dir / "prepared")
    trained = sorted(p.parent for p in (run_dir / "candidates").glob("*/model.json"))
    if not trained:
        raise FileNotFoundError(f"{run_dir / 'candidates'} holds no trained candidate")
    models = {folder.name: load_model(folder) for folder in trained}
    decodings = {
        folder.name: json.loads((folder / "model.json").read_text())["decoding_on_validation"]
        for folder in trained
    }
    # The neighbour database may hold every customer's inputs: the evaluation baskets stay out.
    if "tifu_knn" in models:
        models["tifu_knn"].fit(data.splits.eval_inputs)
    comparison = compare(
        models,
        data.splits.eval_inputs,
        data.splits.eval_targets,
        config.train.k,
        config.primary_key,
    )
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
    with atomic_dir(winner_dir) as staging:
        shutil.copytree(model_dirs[comparison.winner], staging, dirs_exist_ok=True)
    _record_stage(run_dir, "compare", began)

    stages = stage_seconds(run_dir)
    seconds = round(sum(stages.values()), 1)
    report_path = write_report(
        comparison,
        run_dir,
        extra={
            "k": config.train.k,
            "data_fingerprint": data.fingerprint,
            "users_evaluated": int(data.splits.eval_targets.user_ids.size),
            "decodings_on_validation": decodings,
            "stage_seconds": stages,
            "seconds": seconds,
        },
    )
    log.info("winner: %s", comparison.winner)
    return RetrainResult(run_dir, report_path, comparison.winner, winner_dir, seconds)


def retrain(
    data_dir: Path | str, run_dir: Path | str, config: RunConfig | None = None
) -> RetrainResult:
    """The whole pipeline on `data_dir`, stage after stage in this process (the DAG runs the
    same stages as tasks); see the module docstring for what lands in `run_dir`."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / "stages", ignore_errors=True)
    validate_stage(data_dir, run_dir)
    prepare_stage(data_dir, run_dir, config)
    embed_stage(run_dir, config)
    train_stage(run_dir, candidate_names(config), config)
    return compare_stage(run_dir, config)
