"""The `basket` command: argument parsing only; each subcommand calls one stage function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from basket.batch import score_users
from basket.compare import report_table
from basket.config import load_config
from basket.data.importer import TransactionColumns, import_completejourney, import_transactions
from basket.data.load import DataFileError
from basket.data.synth import SynthConfig, write_synthetic
from basket.online import RequestLimits
from basket.package import ServingConfig, package
from basket.retrain import ValidationFailed, retrain
from basket.train import train_predictors
from basket.validate import validate


def _synth(args: argparse.Namespace) -> int:

    config = SynthConfig(
        users=args.users,
        seed=args.seed,
        products=args.products,
        orders_mean=args.orders_mean,
        basket_mean=args.basket_mean,
    )
    started = time.perf_counter()
    out = write_synthetic(config, args.out)
    print(
        f"wrote Instacart-layout CSVs for {config.users:,} users, {config.n_products():,} products "
        f"(seed {config.seed}) to {out} in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    report = validate(
        args.data_dir, report_dir=args.report, expectations_dir=args.expectations,
        max_warning_share=args.max_warning_share,
    )  # fmt: skip
    print(report.summary())
    return 0 if report.success else 1


def _training_overrides(args: argparse.Namespace) -> dict:
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


def _train(args: argparse.Namespace) -> int:

    config = load_config(args.config, _training_overrides(args))
    started = time.perf_counter()
    result = train_predictors(args.data_dir, args.out, config)
    print(f"\nheld-out metrics (evaluation split, k={config.train.k}):")
    print(report_table(result.metrics, f"recall@{config.train.k}"))
    for name, model_dir in result.model_dirs.items():
        print(f"{name}: {model_dir}  (grid: {args.out / 'grid' / (name + '_grid.png')})")
    print(f"done in {time.perf_counter() - started:.0f}s")
    return 0


def _retrain(args: argparse.Namespace) -> int:

    config = load_config(args.config, _training_overrides(args))
    try:
        result = retrain(args.data_dir, args.out, config)
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


def _score(args: argparse.Namespace) -> int:

    result = score_users(args.model, args.data, args.out, k=args.k, quarantine=args.quarantine)
    print(
        f"wrote {result.rows:,} recommendations for {result.users:,} users to {result.out_path} "
        f"in {result.seconds:.1f}s ({result.users_per_second:,.0f} users/s)"
    )
    return 0


def _package(args: argparse.Namespace) -> int:

    config = ServingConfig(
        model_name=args.model_name,
        workers=args.workers,
        batch_size=args.batch_size,
        max_batch_delay_ms=args.max_batch_delay,
        limits=RequestLimits(max_k=args.max_k, max_orders=args.max_orders),
    )
    written = package(args.run_dir, args.out, triton_dir=args.triton, config=config)
    print(f"packaged {written['model']} version {written['version']} as {written['mar']}")
    if written["triton"]:
        print(f"wrote the Triton model repository {written['triton']}")
    return 0


def _import_transactions(args: argparse.Namespace) -> int:
    columns = TransactionColumns(
        user=args.user, basket=args.basket, time=args.time, product=args.product,
        name=args.name, aisle=args.aisle, department=args.department,
    )  # fmt: skip
    return _imported(
        import_transactions(
            args.file, columns, args.out, args.products, args.holdout_last, args.min_orders
        )
    )


def _import_completejourney(args: argparse.Namespace) -> int:

    return _imported(import_completejourney(args.out, not args.no_holdout, args.min_orders))


def _imported(result) -> int:
    print(
        f"wrote {result.orders:,} orders of {result.users:,} users ({result.lines:,} lines, "
        f"{result.duplicate_lines_merged:,} duplicate lines merged) to {result.out_dir}"
    )
    if result.products_added:
        print(
            f"warning: {result.products_added:,} products ({result.lines_with_added_products:,} "
            "lines) were missing from the catalogue and were added as unknown items"
        )
    return 0


def _add_import_commands(commands) -> None:
    imports = commands.add_parser(
        "import", help="transaction logs (or Complete Journey) -> an Instacart-layout folder"
    ).add_subparsers(dest="source", required=True)
    logs = imports.add_parser("transactions", help="a CSV or parquet log, one line per product")
    logs.add_argument("file", type=Path, help="the transaction log")
    logs.add_argument("--products", type=Path, default=None, help="a product file (catalogue)")
    for flag, what in (("user", "customer"), ("basket", "basket (order)"),
                       ("time", "time of purchase"), ("product", "product id")):  # fmt: skip
        logs.add_argument(f"--{flag}", required=True, help=f"column holding the {what}")
    for flag in ("name", "aisle", "department"):
        logs.add_argument(f"--{flag}", default=None, help=f"column holding the product {flag}")
    logs.add_argument(
        "--holdout-last", action="store_true",
        help="each user's newest basket becomes their `train` order (the labels)",
    )  # fmt: skip
    logs.add_argument("--min-orders", type=int, default=1, help="keep users with this many baskets")
    logs.add_argument("--out", type=Path, required=True, help="the folder to write")
    logs.set_defaults(run=_import_transactions)
    journey = imports.add_parser(
        "completejourney", help="Dunnhumby's Complete Journey (needs basket[datasets])"
    )
    journey.add_argument("--out", type=Path, required=True, help="the folder to write")
    journey.add_argument(
        "--min-orders", type=int, default=4, help="households with this many baskets"
    )
    journey.add_argument(
        "--no-holdout", action="store_true", help="keep every basket `prior` (no train order)"
    )
    journey.set_defaults(run=_import_completejourney)


def _serving():

    return ServingConfig()


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `train` and `retrain`; each maps onto a field of the run config."""
    parser.add_argument("data_dir", type=Path, help="Instacart-layout folder")
    parser.add_argument(
        "--out", type=Path, required=True, help="run folder for models, report and plots"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="JSON or TOML file overriding the defaults"
    )
    parser.add_argument("--models", nargs="+", choices=["cnngru", "attentiongru"], default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--pos-weights", type=float, nargs="+", default=None)
    parser.add_argument("--thresholds", type=float, nargs="+", default=None)
    parser.add_argument("--targets-per-user", type=int, default=None)
    parser.add_argument(
        "--vocab-size", type=int, default=None, help="top-N products the models score"
    )
    parser.add_argument("--embed-epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `basket` command (the CLI contract of DESIGN.md)."""
    parser = argparse.ArgumentParser(
        prog="basket", description="Next-basket prediction for grocery orders."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write synthetic Instacart-layout CSVs")
    synth.add_argument("--users", type=int, required=True, help="number of customers")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument(
        "--products",
        type=int,
        default=None,
        help="catalogue size (default: users/2 in 400..49,688)",
    )
    synth.add_argument("--orders-mean", type=float, default=16.0, help="mean orders per customer")
    synth.add_argument("--basket-mean", type=float, default=10.0, help="mean products per order")
    synth.set_defaults(run=_synth)

    validate = commands.add_parser(
        "validate",
        help="check a data folder against the Great Expectations suites (exit 1 on failure)",
    )
    validate.add_argument("data_dir", type=Path, help="Instacart-layout folder (CSV or parquet)")
    validate.add_argument(
        "--report", type=Path, default=None, help="write GX result JSON and Data Docs here"
    )
    validate.add_argument(
        "--expectations", type=Path, default=None, help="suites folder (default: expectations/)"
    )
    validate.add_argument(
        "--max-warning-share", type=float, default=0.01,
        help="share of a file's rows a warning rule may quarantine before it fails (0.01)",
    )  # fmt: skip
    validate.set_defaults(run=_validate)

    train = commands.add_parser(
        "train", help="train CNNGRU and AttentionGRU with the pos_weight x threshold grid"
    )
    _add_training_flags(train)
    train.set_defaults(run=_train)

    retrain = commands.add_parser(
        "retrain",
        help="the nightly pipeline: validate, embed, train all candidates, compare, write the winner",
    )
    _add_training_flags(retrain)
    retrain.set_defaults(run=_retrain)

    pack = commands.add_parser(
        "package", help="archive RUN/winner as a TorchServe .mar (and a Triton repository)"
    )
    pack.add_argument("run_dir", type=Path, help="a `basket retrain` run folder")
    pack.add_argument("--out", type=Path, required=True, help="the .mar to write (atomically)")
    pack.add_argument("--triton", type=Path, default=None, help="also write a Triton repository")
    pack.add_argument("--model-name", default="basket", help="name served at /predictions/NAME")
    pack.add_argument("--workers", type=int, default=_serving().workers, help="TorchServe workers")
    pack.add_argument(
        "--batch-size", type=int, default=_serving().batch_size, help="server-side batch size"
    )
    pack.add_argument(
        "--max-batch-delay",
        type=int,
        default=_serving().max_batch_delay_ms,
        help="ms a request may wait for a batch",
    )
    pack.add_argument(
        "--max-k", type=int, default=_serving().limits.max_k, help="largest k a request may ask for"
    )
    pack.add_argument(
        "--max-orders",
        type=int,
        default=_serving().limits.max_orders,
        help="most orders per request",
    )
    pack.set_defaults(run=_package)

    _add_import_commands(commands)

    score = commands.add_parser(
        "score", help="batch recommendations to parquet (same path as online answers)"
    )
    score.add_argument(
        "--model", type=Path, required=True, help="a model dir (e.g. RUN/winner) or a .mar"
    )
    score.add_argument(
        "--data", type=Path, required=True, help="Instacart-layout folder with the histories"
    )
    score.add_argument("--out", type=Path, required=True, help="parquet file to write (atomically)")
    score.add_argument("--k", type=int, default=10, help="products per user")
    score.add_argument(
        "--quarantine", type=Path, default=None,
        help="leave out the lines `basket validate --report DIR` quarantined (DIR/quarantine)",
    )  # fmt: skip
    score.set_defaults(run=_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `basket` command; returns the process exit code (2 for unusable input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        return args.run(args)
    except (DataFileError, FileNotFoundError, ImportError) as err:
        print(f"basket {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
