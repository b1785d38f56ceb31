"""`basket synth` and `basket import`: data in, an Instacart-layout folder out."""

from __future__ import annotations

import argparse
import time

from basket.data.importer import (
    TransactionColumns,
    UserSample,
    import_completejourney,
    import_transactions,
)
from basket.data.synth import SynthConfig, write_synthetic


def synth(args: argparse.Namespace) -> int:
    """A synthetic Instacart-layout folder."""
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


def transactions(args: argparse.Namespace) -> int:
    """A transaction log (and catalogue) as an Instacart-layout folder."""
    columns = TransactionColumns(
        user=args.user, basket=args.basket, time=args.time, product=args.product,
        name=args.name, aisle=args.aisle, department=args.department,
    )  # fmt: skip
    return _imported(
        import_transactions(
            args.file,
            columns,
            args.out,
            args.products,
            args.holdout_last,
            args.min_orders,
            _sample(args),
        )
    )


def completejourney(args: argparse.Namespace) -> int:
    """Complete Journey (basket[datasets]) as an Instacart-layout folder."""
    return _imported(
        import_completejourney(args.out, not args.no_holdout, args.min_orders, _sample(args))
    )


def _sample(args: argparse.Namespace) -> UserSample | None:
    """The `--sample-users` / `--sample-seed` sample, or None (every user)."""
    return None if args.sample_users is None else UserSample(args.sample_users, args.sample_seed)


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
