"""The `basket` command: argument parsing only; each subcommand calls one stage function."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from basket.data.load import DataFileError


def _synth(args: argparse.Namespace) -> int:
    from basket.data.synth import SynthConfig, write_synthetic

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
    from basket.validate import validate

    report = validate(args.data_dir, report_dir=args.report, expectations_dir=args.expectations)
    print(report.summary())
    return 0 if report.success else 1


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
        "--expectations",
        type=Path,
        default=None,
        help="suites folder (default: the repo's expectations/)",
    )
    validate.set_defaults(run=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `basket` command; returns the process exit code (2 for unusable input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DataFileError as err:
        print(f"basket {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
