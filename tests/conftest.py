"""Shared fixtures: small synthetic Instacart folders, generated once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from basket.data.synth import SynthConfig, write_synthetic


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A clean 300-user synthetic folder; read it, never write to it (use `data_copy`)."""
    return write_synthetic(SynthConfig(users=300, seed=7), tmp_path_factory.mktemp("synth"))


@pytest.fixture
def data_copy(synth_dir, tmp_path) -> Path:
    """A private copy of the synthetic folder that a test may corrupt."""
    target = tmp_path / "data"
    shutil.copytree(synth_dir, target)
    return target


@pytest.fixture(scope="session")
def prepared(synth_dir):
    """The 300-user folder loaded, with splits and a vocabulary."""
    from basket.data import VocabConfig
    from basket.data.prepare import prepare

    return prepare(synth_dir, VocabConfig())
