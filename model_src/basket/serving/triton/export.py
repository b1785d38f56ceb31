"""A `basket.mar` as a Triton model repository, with the archive's own serving settings:
what the Triton image runs when it starts, so TorchServe and Triton serve the same published
archive from the same model store.

    python -m basket.serving.triton.export model_store/basket.mar REPOSITORY
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

from basket.config.serving import ServingConfig
from basket.serving.triton.repository import TritonConfig, export_triton_repository


def export_archive(archive: Path | str, repository: Path | str) -> Path:
    """Write the model of `archive` (a .mar) into `repository` with the batch size, delay,
    workers, torch threads and request limits of its model-config.yaml. Returns REPO/NAME."""
    archive = Path(archive)
    if not zipfile.is_zipfile(archive):
        raise FileNotFoundError(f"{archive} is not a basket.mar archive (run `basket package`)")
    with tempfile.TemporaryDirectory(prefix="basket-mar-") as folder:
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(folder)
        model_yaml = Path(folder) / "model-config.yaml"
        values = yaml.safe_load(model_yaml.read_text()) if model_yaml.exists() else {}
        config = ServingConfig.from_model_yaml(values or {})
        return export_triton_repository(folder, repository, TritonConfig.from_serving(config))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m basket.serving.triton.export ARCHIVE.mar REPOSITORY")
    print(f"exported {sys.argv[1]} to {export_archive(sys.argv[1], sys.argv[2])}")
