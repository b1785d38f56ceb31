"""Publishing: a packaged winner in, the production `basket.mar` of a model store out.

    model_store/basket.mar                  the model in production (what TorchServe loads)
    model_store/basket-<version>.mar        every version ever promoted, kept
    model_store/production.json             the current version, its score, and the history

The new archive is promoted only when its winner scores at least as well as
the production model on the new run's own evaluation split (both measured
here, on the same customers, with the same metric). Promotion is one atomic
step: the versioned copy is written first (invisible to servers and batch
runs), then one rename puts it in place as `basket.mar`, which is the single
truth of what is in production (`production_version` reads its model.json);
production.json records the history after it, and a retried publish completes
it without a duplicate entry. A refused candidate leaves every byte of the store
as it was.

Registering the new version with a running TorchServe (`register_production`) is
a separate step: it may fail or be retried without undoing or half-doing the
promotion.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from basket.data.prepare import Prepared
from basket.io.atomic import atomic_dir, copy_atomically, write_json_atomically
from basket.models.model_meta import ModelMeta
from basket.models.registry import load_model
from basket.serving.batch import opened_model_dir
from basket.serving.torchserve import register_model
from basket.training.compare import evaluate_candidate

log = logging.getLogger(__name__)

PRODUCTION = "basket.mar"


@dataclass(frozen=True)
class PublishResult:
    """What `publish` decided and did."""

    promoted: bool
    version: str
    metric: str
    score: float
    production_version: str | None
    production_score: float | None
    reason: str


def production_score(mar_path: Path, run_dir: Path, metric: str, k: int) -> tuple[str, float]:
    """(version, `metric`) of the archive `mar_path` on the evaluation split of `run_dir`."""
    data = Prepared.load(run_dir / "prepared")
    with opened_model_dir(mar_path) as model_dir:
        model = load_model(model_dir)
        metrics = evaluate_candidate(
            model, data.splits.eval_inputs, data.splits.eval_targets, k
        ).metrics
    return archive_version(mar_path), float(metrics[metric])


def publish(run_dir: Path | str, mar_path: Path | str, model_store: Path | str) -> PublishResult:
    """Promote `mar_path` (the package of RUN/winner) into `model_store` unless it is worse
    than the production model on RUN's evaluation split; the decision goes to RUN/publish.json."""
    run_dir, mar_path, store = Path(run_dir), Path(mar_path), Path(model_store)
    report = json.loads((run_dir / "report.json").read_text())
    metric, winner = report["primary_metric"], report["winner"]
    score = float(report["candidates"][winner][metric])
    version = ModelMeta.read(run_dir / "winner").version
    store.mkdir(parents=True, exist_ok=True)
    current = store / PRODUCTION
    prod_version = prod_score = None
    if current.exists():
        prod_version, prod_score = production_score(current, run_dir, metric, report.get("k", 10))
    if prod_score is not None and score < prod_score:
        result = PublishResult(
            False, version, metric, score, prod_version, prod_score,
            f"{winner} {version} scores {metric} {score:.4f} < production {prod_version} "
            f"{prod_score:.4f} on the same split: not promoted",
        )  # fmt: skip
    else:
        copy_atomically(mar_path, store / f"basket-{version}.mar")
        copy_atomically(mar_path, current)  # the commit point
        _record_production(store, version, metric, score, run_dir)
        reason = (
            "no model in production"
            if prod_score is None
            else f"{metric} {score:.4f} >= production {prod_version} {prod_score:.4f}"
        )
        result = PublishResult(True, version, metric, score, prod_version, prod_score, reason)
    log.info("publish: %s", result.reason)
    write_json_atomically(run_dir / "publish.json", asdict(result))
    return result


def _record_production(store: Path, version: str, metric: str, score: float, run_dir: Path):
    path = store / "production.json"
    history = json.loads(path.read_text()).get("history", []) if path.exists() else []
    if history and history[-1]["version"] == version and history[-1]["run_dir"] == str(run_dir):
        history = history[:-1]  # a retried publish of the same run: one entry, not two
    entry = {
        "version": version,
        metric: score,
        "run_dir": str(run_dir),
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomically(path, {**entry, "history": [*history, entry]})


class NoProductionModel(FileNotFoundError):
    """The model store has no basket.mar yet: nothing was ever published there."""


def archive_version(mar_path: Path | str) -> str:
    """The model version inside a `.mar` archive (its model.json)."""
    with zipfile.ZipFile(mar_path) as archive:
        return ModelMeta.parse(archive.read("model.json"), f"{mar_path}:model.json").version


def _production_archive(model_store: Path | str) -> Path:
    current = Path(model_store) / PRODUCTION
    if not current.exists():
        raise NoProductionModel(
            f"{current} does not exist: no model was published to {model_store} yet "
            "(run the basket_retrain DAG, or `basket retrain` and `basket package`, first)"
        )
    return current


def production_version(model_store: Path | str) -> str:
    """The version of the model in production: the one inside `model_store/basket.mar`."""
    return archive_version(_production_archive(model_store))


def pin_production(model_store: Path | str, run_dir: Path | str) -> tuple[str, Path]:
    """(version, RUN/model/): the production archive unpacked once for one batch run, so every
    shard scores the same version even when a publish lands while the run is going, and no
    shard unpacks the archive again."""
    pinned = Path(run_dir) / "model"
    with (
        zipfile.ZipFile(_production_archive(model_store)) as archive,
        atomic_dir(pinned) as staging,
    ):
        archive.extractall(staging)
    return ModelMeta.read(pinned).version, pinned


def register_production(
    model_store: Path | str, management_url: str, token: str | None = None
) -> dict:
    """Load the production version (`basket-<version>.mar` of the store TorchServe serves) into
    the TorchServe at `management_url` and make it the default; `token` is its management key
    when token authorization is on. Returns `register_model`'s answer; raises RuntimeError when
    TorchServe refuses, OSError when it is unreachable."""
    version = production_version(model_store)
    return register_model(management_url, f"basket-{version}.mar", version, token=token)
