"""The layers contract in pyproject.toml (`lint-imports`, run by `make test`) holds on the
tree, and a wrong-way import planted in a copy of the package breaks it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import basket

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's contracts, `basket` imported from `package_parent`."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        env=env,
        capture_output=True,
        text=True,
        cwd=package_parent,
    )


def planted_copy(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with `line` appended to `module` (a path inside basket/)."""
    shutil.copytree(
        Path(basket.__file__).parent,
        tmp_path / "basket",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    with (tmp_path / "basket" / module).open("a") as target:
        target.write(f"\n{line}\n")
    return tmp_path


def test_the_tree_keeps_its_layers():
    done = lint_imports(ROOT / "model_src")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 kept, 0 broken" in done.stdout


def test_a_model_importing_serving_breaks_the_layers(tmp_path):
    copy = planted_copy(tmp_path, "models/base.py", "import basket.serving.online  # noqa")
    done = lint_imports(copy)
    assert done.returncode != 0
    assert "basket.models.base -> basket.serving.online" in done.stdout


def test_serving_importing_training_breaks_the_layers(tmp_path):
    copy = planted_copy(tmp_path, "serving/batch.py", "import basket.training.compare  # noqa")
    done = lint_imports(copy)
    assert done.returncode != 0
    assert "basket.serving.batch -> basket.training.compare" in done.stdout


def test_the_architecture_page_and_the_layers_contract_name_the_packages_of_the_tree():
    """docs/architecture.md's package table, the import-linter layers and the folders of
    model_src/basket/ name the same packages."""
    package = Path(basket.__file__).parent
    tree = {f"basket.{p.parent.name}" for p in package.glob("*/__init__.py")}
    page = (ROOT / "docs" / "architecture.md").read_text()
    documented = set(re.findall(r"^\| `(basket\.\w+)` \|", page, re.M))
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    assert documented == tree, documented ^ tree
    assert layered == tree, layered ^ tree
    top_level = [p.name for p in package.iterdir() if p.name != "__pycache__"]
    assert len(top_level) <= 14, top_level  # a handful of layers, not a flat list of modules
