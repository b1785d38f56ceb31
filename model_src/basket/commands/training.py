"""`basket train` and `basket retrain`: the config from file and flags, the run, its table."""

from __future__ import annotations

import argparse
import json
import time

from basket.commands.exit_codes import ExitCode
from basket.config.candidates import REFERENCE
from basket.config.run import load_config
from basket.config.settings import (
    TRAINING_FLAGS,
    merge_overrides,
    nested_overrides,
    overrides_from_assignments,
)
from basket.training.compare import report_table
from basket.training.retrain import ValidationFailed
from basket.training.retrain import retrain as run_pipeline


def overrides(args: argparse.Namespace) -> dict:
    """The settings the named flags and `--set` gave, as nested config overrides (`--set` last,
    so it wins)."""
    named = {
        path: getattr(args, path)
        for path in TRAINING_FLAGS.values()
        if getattr(args, path, None) is not None
    }
    return merge_overrides(nested_overrides(named), overrides_from_assignments(args.assignments))


def train(args: argparse.Namespace) -> int:
    """The retrain pipeline restricted to some candidates (default: the config's neural models
    beside P-TopFreq); 1 when the data fails validation."""
    config = load_config(args.config, overrides(args))
    candidates = tuple(args.candidates or (*config.models, REFERENCE))
    return _run(args, config, candidates)


def retrain(args: argparse.Namespace) -> int:
    """The whole nightly pipeline; 1 (and no winner) when the data fails validation."""
    return _run(args, load_config(args.config, overrides(args)), None)


def _run(args: argparse.Namespace, config, candidates) -> int:
    started = time.perf_counter()
    try:
        result = run_pipeline(args.data_dir, args.out, config, candidates)
    except ValidationFailed as failed:
        print(failed.report.summary())
        print("stopped before training: no winner was written.")
        return ExitCode.CHECK_FAILED
    report = json.loads(result.report_path.read_text())
    table = report_table(
        report["candidates"], report["primary_metric"], report["winner"], report["k"]
    )
    print(f"\n{table}\n")
    print(f"winner: {result.winner} -> {result.winner_dir}")
    print(
        f"report: {result.report_path} (and report.md, candidates.png, precision_recall_at_k.png)"
    )
    grids = sorted(args.out.glob("grid/*_grid.png"))
    if grids:
        print("grids: " + ", ".join(str(path) for path in grids))
    print(f"stages (s): {report['stage_seconds']}; done in {time.perf_counter() - started:.0f}s")
    return 0
