"""Publishing: a packaged winner in, the production `basket.mar` of a model store out.

    model_store/basket.mar                  the model in production (what TorchServe loads)
    model_store/basket-<version>.mar        every version ever promoted, kept
    model_store/production.json             the current version, its score, and the history

The new archive is promoted only when its winner scores at least as well as
the production model on the new run's own evaluation split (both measured
here, on the same customers, with the same metric). Promotion writes the
archive beside its target and renames it into place, so a server or reader
never sees half a file; a refused candidate leaves every byte of the store as
it was. When a TorchServe management API is given and reachable, the new
version is registered there and made the default.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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
    registered: str | None = None


def _copy_atomically(source: Path, target: Path) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, temp)
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def production_score(mar_path: Path, run_dir: Path, metric: str, k: int) -> tuple[str, float]:
    """(version, `metric`) of the archive `mar_path` on the evaluation split of `run_dir`."""
    from basket.batch import opened_model_dir
    from basket.compare import evaluate_candidate
    from basket.data.prepare import Prepared
    from basket.models import load_model

    data = Prepared.load(run_dir / "prepared")
    with opened_model_dir(mar_path) as model_dir:
        version = json.loads((model_dir / "model.json").read_text()).get("version", "unversioned")
        model = load_model(model_dir)
        metrics, _ = evaluate_candidate(model, data.splits.eval_inputs, data.splits.eval_targets, k)
    return version, float(metrics[metric])


def publish(
    run_dir: Path | str,
    mar_path: Path | str,
    model_store: Path | str,
    management_url: str | None = None,
) -> PublishResult:
    """Promote `mar_path` (the package of RUN/winner) into `model_store` unless it is worse
    than the production model on RUN's evaluation split; register it with TorchServe."""
    run_dir, mar_path, store = Path(run_dir), Path(mar_path), Path(model_store)
    report = json.loads((run_dir / "report.json").read_text())
    metric, winner = report["primary_metric"], report["winner"]
    score = float(report["candidates"][winner][metric])
    version = json.loads((run_dir / "winner" / "model.json").read_text())["version"]
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
        _copy_atomically(mar_path, store / f"basket-{version}.mar")
        _copy_atomically(mar_path, current)
        _record_production(store, version, metric, score, run_dir)
        reason = (
            "no model in production"
            if prod_score is None
            else f"{metric} {score:.4f} >= production {prod_version} {prod_score:.4f}"
        )
        result = PublishResult(True, version, metric, score, prod_version, prod_score, reason)
        if management_url:
            result = _register(result, management_url, f"basket-{version}.mar")
    log.info("publish: %s", result.reason)
    (run_dir / "publish.json").write_text(json.dumps(asdict(result), indent=1))
    return result


def _record_production(store: Path, version: str, metric: str, score: float, run_dir: Path):
    path = store / "production.json"
    history = json.loads(path.read_text()).get("history", []) if path.exists() else []
    entry = {
        "version": version,
        metric: score,
        "run_dir": str(run_dir),
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    record = {**entry, "history": [*history, entry]}
    handle, temp = tempfile.mkstemp(prefix=".production.json.", dir=store)
    with os.fdopen(handle, "w") as out:
        json.dump(record, out, indent=1)
    os.replace(temp, path)


def _register(result: PublishResult, management_url: str, archive: str) -> PublishResult:
    """Register `archive` with a running TorchServe; an unreachable server is logged, not fatal."""
    from basket.torchserve import register_model

    try:
        registered = register_model(management_url, archive, result.version)
    except OSError as error:
        log.warning("TorchServe at %s not reachable (%s); not registered", management_url, error)
        return result
    return PublishResult(**{**asdict(result), "registered": registered["registered"]})
