"""`basket validate`: the Great Expectations suites on a data folder."""

from __future__ import annotations

import argparse

from basket.commands.exit_codes import ExitCode
from basket.validation.validate import validate


def run(args: argparse.Namespace) -> int:
    """The suites on a folder: 0 when they hold (warnings allowed), 1 when one fails."""
    report = validate(
        args.data_dir, report_dir=args.report, expectations_dir=args.expectations,
        max_warning_share=args.max_warning_share,
    )  # fmt: skip
    print(report.summary())
    return ExitCode.OK if report.success else ExitCode.CHECK_FAILED
