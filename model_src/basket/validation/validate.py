"""Validate an Instacart-layout folder with the Great Expectations suites in `expectations/`.

One suite per table, kept as JSON. Each table is checked as it is on disk
(types as the reader infers them) plus a few lookup columns basket adds so that
cross-table rules stay plain column expectations:

- orders.expected_order_number: the rank of order_number within its user, so
  "order_number runs 1, 2, 3, ... per user" is `order_number == expected_order_number`;
- lines.order_eval_set: the eval_set of the line's order (empty when the order
  is missing), lines.product_in_catalogue: whether the product exists;
- products.aisle_known / department_known: whether the ids exist.

`validate` returns a `ValidationReport` whose `summary()` says, per failed
expectation, which file and column, how many rows, and a few example values and
row ids; with a report folder it also writes the GX result JSON and Data Docs.

Rules are critical (they stop the run) unless their suite meta says
`"severity": "warning"`: such a rule (today: a line's product missing from the
catalogue) moves the rows breaking it to REPORT/quarantine/TABLE.parquet while
they are at most `max_warning_share` (1 %) of the file, and the run goes on
without them (`basket.data.quarantine`); above the share it stops the run too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from basket.validation.report import ValidationReport
from basket.validation.suites import load_suite_dicts, range_checked_columns, run_suites
from basket.validation.tables import read_raw, release_unused_memory, with_lookups
from basket.validation.triage import DEFAULT_WARNING_SHARE, triage, write_quarantine


def validate(
    data_dir: Path | str,
    report_dir: Path | str | None = None,
    expectations_dir: Path | str | None = None,
    max_warning_share: float = DEFAULT_WARNING_SHARE,
) -> ValidationReport:
    """Run every suite on the files of `data_dir`; write JSON and Data Docs to `report_dir` if given.

    Rules marked `"severity": "warning"` in a suite's meta do not fail the data while at
    most `max_warning_share` of a file's rows break them: those rows are quarantined
    (REPORT_DIR/quarantine/TABLE.parquet, with the rule) and reported as warnings.
    Raises DataFileError when a required file is missing or unreadable, or a
    suite file is missing. Returns the report; `report.success` is the verdict.
    """
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    data_dir = Path(data_dir)
    suites = load_suite_dicts(expectations_dir)
    raw, files = read_raw(data_dir, range_checked_columns(suites))
    views = with_lookups(raw)
    release_unused_memory()

    report_dir = None if report_dir is None else Path(report_dir)
    failures, skipped, results, rows, run = run_suites(views, raw, files, suites, report_dir)

    failures, warnings, quarantine = triage(failures, views, raw, files, max_warning_share)
    report = ValidationReport(
        data_dir=data_dir,
        success=not failures,
        rows=rows,
        expectations_run=run,
        failures=failures,
        skipped=skipped,
        report_dir=report_dir,
        warnings=warnings,
        quarantined={files[table]: len(frame) for table, frame in quarantine.items()},
    )
    if report_dir is not None and report.success:
        write_quarantine(report_dir / "quarantine", quarantine)
    if report_dir is not None:
        payload = {
            "success": report.success,
            "warnings": [w.description for w in warnings],
            "quarantined": report.quarantined,
            "data_dir": str(data_dir.resolve()),
            "suites": results,
        }
        (report_dir / "validation_result.json").write_text(
            json.dumps(payload, indent=1, default=str)
        )
        (report_dir / "summary.txt").write_text(report.summary() + "\n")
    return report
