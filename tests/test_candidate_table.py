"""The candidate table is the one list of candidates: the CLI, the config, the tuners, the
winner rule and the retrain DAG all follow it."""

from __future__ import annotations

from basket.candidate_table import CANDIDATE_NAMES, NEURAL, SIMPLICITY, TABLE, training_tasks
from basket.candidates import CANDIDATES, TUNERS
from basket.cli import build_parser
from basket.config import RunConfig


def choices(argv_prefix: list[str], flag: str) -> list[str]:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[argv_prefix[0]]
    return list(next(a for a in sub._actions if flag in a.option_strings).choices)


def test_every_candidate_has_a_tuner_and_the_defaults_train_them_all():
    assert {c.tuner for c in TABLE} <= set(TUNERS)
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
