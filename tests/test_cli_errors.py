"""The `basket` command fails politely: one line naming what is wrong, an exit code from the
documented table (`ExitCode`), and a traceback only with --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

import basket
from basket.commands import cli
from basket.commands.exit_codes import ExitCode


def run_basket(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "basket.commands.cli", *args], capture_output=True, text=True
    )


def test_version_is_printed():
    done = run_basket("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"basket {basket.__version__}"


def test_a_config_file_with_a_wrong_type_is_one_line_naming_file_and_setting(tmp_path):
    config = tmp_path / "nightly.toml"
    config.write_text('[train]\nepochs = "three"\n')
    done = run_basket(
        "retrain", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(config)
    )
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.strip().splitlines() == [
        f"basket retrain: error: {config}: setting train.epochs: expected int, got 'three'"
    ]


def test_a_config_file_that_does_not_parse_names_the_file(tmp_path):
    config = tmp_path / "nightly.toml"
    config.write_text("train = [\n")
    done = run_basket(
        "retrain", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(config)
    )
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.startswith(f"basket retrain: error: {config}: ")
    assert "Traceback" not in done.stderr


def test_a_defect_is_one_line_with_its_exit_code_and_debug_shows_the_traceback(
    monkeypatch, tmp_path, capsys
):
    def broken(args):
        raise RuntimeError("a defect\nover two lines")

    monkeypatch.setattr(cli, "_command", lambda name: broken)
    argv = ["validate", str(tmp_path)]
    assert cli.main(argv) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: a defect over two lines" in err
    assert "--debug" in err
    with pytest.raises(RuntimeError):
        cli.main(["--debug", *argv])


def test_the_server_batch_and_the_training_batch_have_different_flags():
    help_package = run_basket("package", "--help").stdout
    help_train = run_basket("train", "--help").stdout
    assert "--server-batch-size" in help_package and "--batch-size " not in help_package
    assert "--train-batch-size" in help_train and "--server-batch-size" not in help_train
