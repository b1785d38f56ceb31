"""`basket train` and `basket retrain`: the config from file and flags, the run, its table."""

from __future__ import annotations

import argparse
import json
import time

from basket.compare import report_table
from basket.config import load_config
from basket.retrain import ValidationFailed
from basket.retrain import retrain as run_pipeline
from basket.train import train_predictors


def overrides(args: argparse.Namespace) -> dict:
    """The training flags that were given, as nested config overrides."""
    train = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "pos_weights": args.pos_weights,
        "thresholds": args.thresholds,
        "targets_per_user": args.targets_per_user,
        "seed": args.seed,
    }
    overrides = {
        "models": args.models,
        "train": {key: value for key, value in train.items() if value is not None},
        "vocab": {"top_n": args.vocab_size} if args.vocab_size else {},
        "embed": {"epochs": args.embed_epochs} if args.embed_epochs else {},
    }
    return {key: value for key, value in overrides.items() if value}


def train(args: argparse.Namespace) -> int:
    """The neural candidates with their grid; their held-out table."""
    config = load_config(args.config, overrides(args))
    started = time.perf_counter()
    result = train_predictors(args.data_dir, args.out, config)
    print(f"\nheld-out metrics (evaluation split, k={config.train.k}):")
    print(report_table(result.metrics, f"recall@{config.train.k}"))
    for name, model_dir in result.model_dirs.items():
        print(f"{name}: {model_dir}  (grid: {args.out / 'grid' / (name + '_grid.png')})")
    print(f"done in {time.perf_counter() - started:.0f}s")
    return 0


def retrain(args: argparse.Namespace) -> int:
    """The whole nightly pipeline; 1 (and no winner) when the data fails validation."""
    config = load_config(args.config, overrides(args))
    try:
        result = run_pipeline(args.data_dir, args.out, config)
    except ValidationFailed as failed:
        print(failed.report.summary())
        print("retrain stopped before training: no winner was written.")
        return 1
    report = json.loads(result.report_path.read_text())
    print(f"\n{report_table(report['candidates'], report['primary_metric'], report['winner'])}\n")
    print(f"winner: {result.winner} -> {result.winner_dir}")
    print(
        f"report: {result.report_path} (and report.md, candidates.png, precision_recall_at_k.png)"
    )
    print(f"stages (s): {report['stage_seconds']}; total {result.seconds:.0f}s")
    return 0
