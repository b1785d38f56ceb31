"""`basket train` and `basket retrain`: the config from file and flags, the run, its table."""

from __future__ import annotations

import argparse
import json
import time

from basket.candidate_table import REFERENCE
from basket.compare import report_table
from basket.config import load_config
from basket.retrain import ValidationFailed
from basket.retrain import retrain as run_pipeline


def overrides(args: argparse.Namespace) -> dict:
    """The training flags that were given, as nested config overrides."""
    train = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "pos_weights": args.pos_weights,
        "targets_per_user": args.targets_per_user,
        "seed": args.seed,
        "device": args.device,
    }
    overrides = {
        "models": args.models,
        "basket_thresholds": args.thresholds,
        "refit": False if args.no_refit else None,
        "train": {key: value for key, value in train.items() if value is not None},
        "vocab": {"top_n": args.vocab_size} if args.vocab_size else {},
        "embed": {"epochs": args.embed_epochs} if args.embed_epochs else {},
    }
    return {key: value for key, value in overrides.items() if value or value is False}


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
        return 1
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
