"""Every setting has one definition (the typed config); its doc, the docs' settings table, the
CLI's flags and `--set` all come from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from basket.commands.cli import build_parser
from basket.commands.training import overrides
from basket.config.run import load_config
from basket.config.settings import (
    TRAINING_FLAGS,
    all_settings,
    overrides_from_assignments,
    setting,
    settings_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_PAGE = ROOT / "docs" / "reference" / "settings.md"


def test_every_setting_has_a_doc_and_the_docs_table_is_the_generated_one():
    undocumented = [item.path for item in all_settings() if not item.doc]
    assert not undocumented, f"write a comment on these fields: {undocumented}"
    text = SETTINGS_PAGE.read_text()
    table = re.search(r"<!-- generated: settings -->\n(.*?)\n<!-- end generated -->", text, re.S)
    assert table, "the settings page lost its generated-table markers"
    assert table.group(1) == settings_markdown(), "run: python scripts/gen_docs.py"


def test_the_table_reads_docs_and_defaults_off_the_config():
    by_path = {item.path: item for item in all_settings()}
    assert by_path["xgboost.objective"].default == "rank:ndcg"
    assert "ranking objective" in by_path["xgboost.objective"].doc  # the comment above it
    assert by_path["train.patience"].doc.startswith("epochs without a validation gain")
    assert by_path["vocab.top_n"].type_name == "int or none"
    assert by_path["train.pos_weights"].type_name == "list of float"


def test_set_parses_each_value_by_its_settings_type():
    nested = overrides_from_assignments(
        ["xgboost.rounds=200", "vocab.top_n=none", "train.pos_weights=5, 10", "refit=false"]
    )
    config = load_config(overrides=nested)
    assert config.xgboost.rounds == 200 and config.vocab.top_n is None
    assert config.train.pos_weights == (5.0, 10.0) and config.refit is False


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("xgboost.round=200", "unknown setting 'xgboost.round'; known: xgboost.explore"),
        ("xgboost.rounds=many", r"setting xgboost.rounds \(int\): 'many' is not a number"),
        ("refit=maybe", r"setting refit \(bool\): 'maybe' is not true or false"),
        ("xgboost.rounds", "expected PATH=VALUE"),
    ],
)
def test_a_bad_setting_is_refused_by_name(assignment, message):
    with pytest.raises(ValueError, match=message):
        overrides_from_assignments([assignment])


# What reads an environment variable: os.environ / os.getenv in Python, ${NAME…} or $NAME in
# shell scripts and compose.yaml, VAR=… in Python dicts of environments.
ENV_READS = re.compile(
    r"""environ(?:\.get)?\(\s*["'](BASKET_[A-Z_]+)|environ\[["'](BASKET_[A-Z_]+)|"""
    r"""\$\{?(BASKET_[A-Z_]+)|getenv\(\s*["'](BASKET_[A-Z_]+)"""
)
SOURCES = ("model_src/basket", "dags", "scripts", "compose.yaml", "Dockerfile", "Makefile")


def test_every_environment_variable_read_is_in_the_docs_table():
    root = ROOT
    read = set()
    for source in SOURCES:
        path = root / source
        files = [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.sh")]
        for file in files:
            for match in ENV_READS.finditer(file.read_text()):
                read.add(next(group for group in match.groups() if group))
    section = SETTINGS_PAGE.read_text().split("## Environment variables", 1)[1]
    documented = set(re.findall(r"`(BASKET_[A-Z_]+)`", section))
    assert "BASKET_STORE_URL" in read, "the scan missed a variable: the pattern is broken"
    assert read <= documented, (
        f"document these in docs/reference/settings.md: {sorted(read - documented)}"
    )
    assert documented <= read, f"nothing reads these any more: {sorted(documented - read)}"


def test_every_training_flag_is_one_setting_and_set_wins_over_it():
    parser = build_parser()
    retrain = parser._subparsers._group_actions[0].choices["retrain"]
    own = {"help", "out", "config", "assignments", "data_dir"}
    flags = {a.dest for a in retrain._actions if a.dest not in own}
    assert flags == set(TRAINING_FLAGS.values())
    assert all(setting(path) for path in flags)  # each names a real setting
    args = parser.parse_args(
        ["retrain", "d", "--out", "r", "--epochs", "2", "--vocab-size", "none", "--no-refit",
         "--pos-weights", "5", "10", "--set", "train.epochs=4", "--set", "xgboost.rounds=9"]
    )  # fmt: skip
    config = load_config(overrides=overrides(args))
    assert config.train.epochs == 4 and config.xgboost.rounds == 9  # --set is applied last
    assert config.vocab.top_n is None and config.refit is False
    assert config.train.pos_weights == (5.0, 10.0)


def test_a_bad_flag_value_stops_the_command_naming_the_setting(capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["retrain", "d", "--out", "r", "--set", "tifu.alpha=high"])
    assert stopped.value.code == 2
    assert "setting tifu.alpha (float): 'high' is not a number" in capsys.readouterr().err
