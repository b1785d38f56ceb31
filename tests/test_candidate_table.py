"""The candidate table is the one list of candidates: the CLI, the config, the tuners, the
winner rule and the retrain DAG all follow it."""

from __future__ import annotations

import re
from pathlib import Path

from basket.commands.cli import build_parser
from basket.config.candidates import CANDIDATE_NAMES, NEURAL, SIMPLICITY, TABLE, training_tasks
from basket.config.run import RunConfig
from basket.training.tuning import CANDIDATES, Tuned


def choices(argv_prefix: list[str], flag: str) -> list[str]:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[argv_prefix[0]]
    return list(next(a for a in sub._actions if flag in a.option_strings).choices)


def test_every_candidate_names_a_tuner_that_exists_and_the_defaults_train_them_all():
    for candidate in TABLE:
        tuner = candidate.tuner_function()
        assert tuner.__annotations__["return"] in ("Tuned", Tuned), candidate.name
    assert list(CANDIDATES) == list(CANDIDATE_NAMES)
    config = RunConfig()
    assert set(config.models) | set(config.baselines) == set(CANDIDATE_NAMES)
    assert config.models == NEURAL


def test_the_cli_offers_the_tables_candidates():
    assert choices(["train"], "--candidates") == list(CANDIDATE_NAMES)
    assert choices(["train"], "--models") == list(NEURAL)


def test_the_dag_trains_every_candidate_once_and_simplest_is_first():
    tasks = training_tasks()
    trained = [name for names in tasks.values() for name in names]
    assert sorted(trained) == sorted(CANDIDATE_NAMES)
    assert tasks["train_references"] == ("p_topfreq", "tifu_knn")
    assert SIMPLICITY[0] == "p_topfreq" and SIMPLICITY[-1] in NEURAL


def test_no_production_file_but_the_table_and_its_model_names_a_candidate():
    """A candidate's name is written once, in its table entry, and in its model's `kind`: the
    CLI, tuning, the DAGs and the servers derive the rest from the table."""
    root = Path(__file__).resolve().parents[1]
    table = root / "model_src/basket/config/candidates.py"
    sources = [
        path
        for folder in ("model_src/basket", "dags", "handlers")
        for path in (root / folder).rglob("*.py")
        if "testing" not in path.parts and path != table
    ]
    for candidate in TABLE:
        quoted = re.compile(rf"[\"']{candidate.name}[\"']")
        model_file = (
            root / "model_src" / (candidate.model.partition(":")[0].replace(".", "/") + ".py")
        )
        naming = {p.relative_to(root) for p in sources if quoted.search(_code(p))}
        assert naming <= {model_file.relative_to(root)}, (candidate.name, naming)


def _code(path: Path) -> str:
    """A file's text without its docstrings and comments."""
    text = path.read_text()
    text = re.sub(r'"""(?:.|\n)*?"""', "", text)
    return re.sub(r"#.*", "", text)
