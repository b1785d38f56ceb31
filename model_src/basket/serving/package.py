"""Packaging: a retrain run's winner in, `basket.mar` (TorchServe) out.

The archive holds the winner's model dir as it is (model.json, vocab.parquet,
weights that load without pickle), `handlers/basket_handler.py`, and a
model-config.yaml with TorchServe's worker and batching settings plus the
request limits under `basket:`. Whatever kind won, the handler opens it with
`basket.models.registry.load_model`. The archive is written beside its target and
renamed into place, so a server never loads half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml
from model_archiver.model_archiver_config import ModelArchiverConfig
from model_archiver.model_packaging import generate_model_archive

from basket.config.serving import ServingConfig
from basket.models.model_meta import ModelMeta
from basket.resources import shipped
from basket.serving.triton.repository import TritonConfig, export_triton_repository

DEFAULT_HANDLER = shipped("basket_handler.py")


def winner_dir(run_dir: Path | str) -> Path:
    """`RUN/winner`, checked to be a model dir."""
    model_dir = Path(run_dir) / "winner"
    if not (model_dir / "model.json").is_file():
        raise FileNotFoundError(
            f"{run_dir} has no winner model ({model_dir / 'model.json'} is missing); "
            "run `basket retrain` first"
        )
    return model_dir


def package_mar(
    model_dir: Path | str,
    out_path: Path | str,
    config: ServingConfig | None = None,
    handler: Path | str = DEFAULT_HANDLER,
) -> Path:
    """Archive the model dir `model_dir` as the TorchServe archive `out_path` (atomically)."""
    config = config or ServingConfig()
    model_dir, out_path, handler = Path(model_dir), Path(out_path), Path(handler)
    if not handler.is_file():
        raise FileNotFoundError(f"TorchServe handler {handler} is missing")
    meta = ModelMeta.read(model_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_path.name}.", dir=out_path.parent) as staging:
        staging = Path(staging)
        model_yaml = staging / "model-config.yaml"
        model_yaml.write_text(yaml.safe_dump(config.model_yaml(), sort_keys=False))
        extra = archived_entries(model_dir, staging / "folders")
        generate_model_archive(
            ModelArchiverConfig(
                model_name=config.model_name,
                handler=str(handler),
                version=meta.version,
                extra_files=",".join(extra),
                export_path=str(staging),
                config_file=str(model_yaml),
                force=True,
            )
        )
        os.replace(staging / f"{config.model_name}.mar", out_path)
    return out_path


def archived_entries(model_dir: Path, wrapper: Path) -> list[str]:
    """The model-archiver `extra_files` that put `model_dir` into the archive as it is: its
    files, and its folders inside `wrapper`. The archiver copies a folder's *contents* into the
    archive's root, so a model's `ranker/` or `neighbours/` given as itself would spill its own
    model.json over the model's; given inside a wrapper, each lands whole under its name."""
    files = sorted(str(path) for path in model_dir.iterdir() if not path.is_dir())
    folders = sorted(path for path in model_dir.iterdir() if path.is_dir())
    if not folders:
        return files
    wrapper.mkdir()
    for folder in folders:
        shutil.copytree(folder, wrapper / folder.name)
    return [*files, str(wrapper)]


def package(
    run_dir: Path | str,
    out_path: Path | str,
    triton_dir: Path | str | None = None,
    config: ServingConfig | None = None,
) -> dict:
    """Package `RUN/winner` as `out_path` (.mar) and, when asked, a Triton repository.

    Returns what was written: {"mar": path, "triton": path or None, "model": name, "version": v}.
    """
    model_dir = winner_dir(run_dir)
    meta = ModelMeta.read(model_dir)
    mar = package_mar(model_dir, out_path, config)
    triton = None
    if triton_dir is not None:
        triton_config = TritonConfig.from_serving(config or ServingConfig())
        triton = export_triton_repository(model_dir, triton_dir, triton_config)
    return {"mar": mar, "triton": triton, "model": meta.name, "version": meta.version}
