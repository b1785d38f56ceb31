"""`basket package` and `basket score`: an archive of the winner, recommendations in batch."""

from __future__ import annotations

import argparse

from basket.config.serving import RequestLimits, ServingConfig
from basket.serving.batch import score_users
from basket.serving.package import package as package_winner


def package(args: argparse.Namespace) -> int:
    """RUN/winner as a .mar (and a Triton repository) with the serving flags."""
    config = ServingConfig(
        model_name=args.model_name,
        workers=args.workers,
        batch_size=args.batch_size,
        max_batch_delay_ms=args.max_batch_delay,
        limits=RequestLimits(max_k=args.max_k, max_orders=args.max_orders),
    )
    written = package_winner(args.run_dir, args.out, triton_dir=args.triton, config=config)
    print(f"packaged {written['model']} version {written['version']} as {written['mar']}")
    if written["triton"]:
        print(f"wrote the Triton model repository {written['triton']}")
    return 0


def score(args: argparse.Namespace) -> int:
    """Recommendations of every customer to score, as parquet."""
    result = score_users(
        args.model, args.data, args.out, k=args.k, quarantine=args.quarantine, device=args.device,
        store_url=args.store, answers_k=args.answers_k,
    )  # fmt: skip
    print(
        f"wrote {result.rows:,} recommendations for {result.users:,} users to {result.out_path} "
        f"in {result.seconds:.1f}s ({result.users_per_second:,.0f} users/s)"
    )
    if args.store:
        print(f"stored the nightly answers of {result.answers_stored:,} customers in {args.store}")
    return 0
