"""The nightly pipeline as stages: validate, prepare, embed, train each candidate, compare.

Each stage is a plain function from the run folder (and data folder) to files in
it, so `basket retrain` runs them one after the other in one process and the
Airflow DAG runs the same functions as separate, retryable tasks:

    validate_stage  data ─► RUN/validation/            (raises ValidationFailed on bad data)
    prepare_stage   data ─► RUN/prepared/, RUN/config.json
    embed_stage          ─► RUN/embeddings.parquet     (the EV file)
    train_stage     NAME ─► RUN/tuned/NAME/            (tuned on the validation baskets,
                             RUN/grid/                  decoding chosen there)
                        ─► RUN/candidates/NAME/       (refit with those baskets as labels)
    compare_stage        ─► RUN/models/NAME/, RUN/winner/, RUN/report.json, report.md, plots

`basket train` is the same pipeline restricted to some candidates. On data that
fails validation nothing after it runs and no winner is written. Candidates
never see an evaluation basket; the comparison uses only those, and it compares
what ships: the refit candidates (the tuned ones are evaluated beside them, so
the report shows what the refit gained).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basket.config.run import RunConfig, config_dict
from basket.data.history import Histories, Targets, sample_positions
from basket.data.prepare import Prepared, prepare
from basket.data.vocab import line_coverage, neural_vocabulary
from basket.io.atomic import atomic_dir, write_json_atomically
from basket.models.embed import embed_products, read_embeddings
from basket.models.metrics import averages
from basket.models.model_meta import ModelMeta
from basket.models.registry import load_model
from basket.training.compare import Comparison, compare, evaluate_candidate, write_report
from basket.training.plots import plot_grid
from basket.training.tuning import CANDIDATES, Tuned, refit_set, tune, tuning_set
from basket.validation.validate import validate

log = logging.getLogger(__name__)
EVALUATION_SEED = 2  # the comparison's sample of customers (validation's is seed 1)


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


def model_version(name: str, fingerprint: str) -> str:
    """`name-YYYYmmddTHHMMSS-<data fingerprint prefix>`: unique per run, traceable to its data."""
    return f"{name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{fingerprint[:8]}"


def candidate_names(config: RunConfig) -> tuple[str, ...]:
    """The candidates a run trains: the neural models and the baselines of `config`."""
    names = (*config.models, *config.baselines)
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidate(s) {unknown}; known: {', '.join(CANDIDATES)}")
    return names


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
        data.splits.eval_inputs,
        neural_vocabulary(data.vocab, config.vocab),
        run_dir / "embeddings.parquet",
        config.embed,
    )
    _record_stage(run_dir, "embed", began)
    return path


def train_stage(run_dir: Path | str, names, config: RunConfig) -> list[Path]:
    """Tune the candidates `names` from RUN/prepared and the EV file into RUN/tuned/NAME (and
    RUN/grid for the neural ones), then refit each into RUN/candidates/NAME."""
    run_dir = Path(run_dir)
    data = Prepared.load(run_dir / "prepared")
    embeddings = read_embeddings(run_dir / "embeddings.parquet", data.vocab)
    tuning, refitting = (
        tuning_set(data, embeddings, config.valid_users),
        refit_set(data, embeddings),
    )
    written = []
    for name in names:
        began = time.perf_counter()
        tuned = tune(name, tuning, config)
        if tuned.grid is not None:
            write_grid(tuned, name, config.train.k, run_dir / "grid")
        extra = {
            "name": name,
            "decoding_on_validation": tuned.decodings,
            "levers": list(tuned.levers),
            "fit": "tuned",
        }
        if config.refit:
            tuned.model.save(run_dir / "tuned" / name, extra=extra)
            refit_began = time.perf_counter()
            tuned.model.fit(refitting)
            extra |= {"fit": "refit", "refit_seconds": round(time.perf_counter() - refit_began, 1)}
        written.append(tuned.model.save(run_dir / "candidates" / name, extra=extra))
        _record_stage(run_dir, f"train_{name}", began)
    return written


def write_grid(tuned: Tuned, name: str, k: int, folder: Path) -> None:
    """FOLDER/NAME_grid.csv (every setting tried, on validation) and, for the neural
    candidates, NAME_epochs.csv and NAME_grid.png."""
    folder.mkdir(parents=True, exist_ok=True)
    tuned.grid.to_csv(folder / f"{name}_grid.csv", index=False)
    if tuned.epochs is not None:
        tuned.epochs.to_csv(folder / f"{name}_epochs.csv", index=False)
        plot_grid(tuned.grid, tuned.epochs, k, name, folder / f"{name}_grid.png")


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
    metas = {folder.name: ModelMeta.read(folder) for folder in trained}
    decodings = {name: meta.decoding_on_validation for name, meta in metas.items()}
    inputs, targets = evaluation_sample(data, config.eval_users)
    comparison = compare(
        models, inputs, targets, config.train.k, config.primary_key, config.confidence,
        config.bootstrap_samples,
    )  # fmt: skip
    model_dirs = {
        name: model.save(
            run_dir / "models" / name,
            extra={
                "name": name,
                "version": model_version(name, data.fingerprint),
                "metrics": comparison.metrics[name],
                "data_fingerprint": data.fingerprint,
                "decoding_on_validation": decodings[name],
                "levers": metas[name].get("levers") or [],
                "fit": metas[name].fit,
            },
        )
        for name, model in models.items()
    }
    tuned, refit_on_same, gain_customers = refit_gain(
        run_dir, models, metas, comparison, (inputs, targets), config
    )
    winner_dir = run_dir / "winner"
    with atomic_dir(winner_dir) as staging:
        shutil.copytree(model_dirs[comparison.winner], staging, dirs_exist_ok=True)
    _record_stage(run_dir, "compare", began)

    stages = stage_seconds(run_dir)
    seconds = round(sum(stages.values()), 1)
    report_path = write_report(
        comparison,
        run_dir,
        tuned=tuned,
        refit_on_same=refit_on_same,
        extra={
            "data_fingerprint": data.fingerprint,
            "users_evaluated": int(targets.user_ids.size),
            "users_held_out": int(data.splits.eval_targets.user_ids.size),
            "vocabulary": vocabulary_record(data, config),
            "refit_gain_customers": gain_customers,
            "decodings_on_validation": decodings,
            "levers": {name: meta.get("levers") or [] for name, meta in metas.items()},
            "stage_seconds": stages,
            "seconds": seconds,
        },
    )
    log.info("winner: %s", comparison.winner)
    return RetrainResult(run_dir, report_path, comparison.winner, winner_dir, seconds)


def evaluation_sample(data: Prepared, users: int | None) -> tuple[Histories, Targets]:
    """(inputs, held-out baskets) the comparison scores: every customer's, or a fixed random
    sample of `users` of them when there are more (None: all)."""
    inputs, targets = data.splits.eval_inputs, data.splits.eval_targets
    if users is None or inputs.n_users <= users:
        return inputs, targets
    keep = sample_positions(inputs.n_users, users, seed=EVALUATION_SEED)
    log.info("comparing on a fixed sample of %d of the %d held-out customers (eval_users)",
             users, inputs.n_users)  # fmt: skip
    return inputs.select_users(keep), targets.select_users(keep)


def vocabulary_record(data: Prepared, config: RunConfig) -> dict:
    """The vocabulary's size and the neural output layer's, with the share of the inputs' order
    lines each holds and of the held-out lines each could reach."""
    vocab = data.vocab
    neural = neural_vocabulary(vocab, config.vocab)
    held_out = data.splits.eval_targets.product_ids
    return {
        "products": len(vocab),
        "neural_output_layer": len(neural),
        "neural_line_share": float(neural.counts.sum() / max(int(vocab.counts.sum()), 1)),
        "held_out_lines_covered": line_coverage(vocab, held_out),
        "held_out_lines_in_the_neural_output_layer": line_coverage(neural, held_out),
    }


def refit_gain(
    run_dir: Path,
    models: dict,
    metas: dict[str, ModelMeta],
    comparison: Comparison,
    held_out: tuple[Histories, Targets],
    config: RunConfig,
) -> tuple[dict, dict, int]:
    """What the refit gained: held-out metrics of each refit candidate's tuned model (RUN/tuned)
    and of the refit, on the same customers of `held_out` (the comparison's), at most
    `refit_gain_users` of them (scoring every customer twice more doubles the stage at scale).
    Returns (tuned, refit, customers)."""
    refit_names = [
        name
        for name in models
        if (run_dir / "tuned" / name / "model.json").is_file() and metas[name].fit == "refit"
    ]
    if not refit_names:
        return {}, {}, 0
    inputs, targets = held_out
    keep = sample_positions(inputs.n_users, config.refit_gain_users)
    inputs, targets = inputs.select_users(keep), targets.select_users(keep)
    gain = (inputs, targets, config.train.k, inputs.bought())
    tuned = {
        name: evaluate_candidate(load_model(run_dir / "tuned" / name), *gain).metrics
        for name in refit_names
    }
    # The refit models were scored on every compared customer: their values on the sample.
    sizes = np.diff(held_out[1].offsets)
    scored_keep = (np.cumsum(sizes > 0) - 1)[keep[sizes[keep] > 0]]
    refit = {
        name: averages({m: v[scored_keep] for m, v in comparison.per_user[name].items()})
        for name in refit_names
    }
    return tuned, refit, len(keep)


def retrain(
    data_dir: Path | str,
    run_dir: Path | str,
    config: RunConfig | None = None,
    candidates: tuple[str, ...] | None = None,
) -> RetrainResult:
    """The whole pipeline on `data_dir`, stage after stage in this process (the DAG runs the
    same stages as tasks); see the module docstring for what lands in `run_dir`. `candidates`
    restricts it to some candidates (`basket train`); by default, every one `config` names."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / "stages", ignore_errors=True)
    validate_stage(data_dir, run_dir)
    prepare_stage(data_dir, run_dir, config)
    embed_stage(run_dir, config)
    train_stage(run_dir, candidates or candidate_names(config), config)
    return compare_stage(run_dir, config)
