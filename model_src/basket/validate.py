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
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from basket.atomic import atomic_dir
from basket.data import schema as s
from basket.data.load import DataFileError, find_table_file, read_table_file
from basket.shipped import shipped

EXAMPLES = 5
DEFAULT_EXPECTATIONS_DIR = shipped("expectations")
WARNING = "warning"
# The share of a file's rows a warning rule may quarantine before it stops the run.
DEFAULT_WARNING_SHARE = 0.01


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold, in terms a person can act on."""

    file: str
    expectation: str
    description: str
    column: str | None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[Any] = field(default_factory=list)
    example_rows: list[dict[str, Any]] = field(default_factory=list)
    observed: Any = None
    error: str | None = None
    severity: str = "critical"  # "warning": its rows may be quarantined (suite meta)
    kwargs: dict[str, Any] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """Two or three lines: where, what was expected, what was found."""
        where = f"{self.file} · {self.column}" if self.column else self.file
        mark = "⚠" if self.severity == WARNING else "✗"
        lines = [f"  {mark} {where}: {self.description}", f"      [{self.expectation}]"]
        if self.error:
            lines.append(f"      could not be checked: {self.error}")
        elif self.unexpected_count is not None:
            found = (
                f"{self.unexpected_count:,} row(s) ({self.unexpected_percent or 0:.3g}%) break it"
            )
            if self.examples:
                found += "; e.g. " + ", ".join(_show(v) for v in self.examples[:EXAMPLES])
            lines.append("      " + found)
            if self.example_rows:
                rows = "; ".join(
                    ", ".join(f"{k}={_show(v)}" for k, v in row.items())
                    for row in self.example_rows[:3]
                )
                lines.append(f"      at rows with {rows}")
        else:
            lines.append(f"      found: {_show(self.observed)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one data folder."""

    data_dir: Path
    success: bool
    rows: dict[str, int]  # file name -> rows checked
    expectations_run: int
    failures: list[Failure]
    skipped: list[str]
    report_dir: Path | None = None
    warnings: list[Failure] = field(default_factory=list)
    quarantined: dict[str, int] = field(default_factory=dict)  # file -> rows set aside

    def summary(self) -> str:
        """A human summary: the verdict, the files checked, then each failure and warning."""
        files = ", ".join(f"{name} ({n:,} rows)" for name, n in self.rows.items())
        if self.success and self.warnings:
            moved = ", ".join(f"{n:,} of {name}" for name, n in self.quarantined.items())
            head = (
                f"Validation passed with {len(self.warnings)} warning(s): "
                f"{self.expectations_run - len(self.warnings)} of {self.expectations_run} "
                f"expectations hold on {files}; rows quarantined (kept out of training and "
                f"scoring): {moved}"
            )
            if self.report_dir is not None:
                head += f"\n  quarantine: {self.report_dir / 'quarantine'}"
        elif self.success:
            head = f"Validation passed: {self.expectations_run} expectations hold on {files}."
        else:
            head = (
                f"Validation FAILED: {len(self.failures)} of {self.expectations_run} expectations "
                f"do not hold in {self.data_dir}\n  files: {files}"
            )
        parts = [
            head,
            *(f.describe() for f in self.failures),
            *(w.describe() for w in self.warnings),
        ]
        parts += [f"  (skipped: {reason})" for reason in self.skipped]
        if self.report_dir is not None:
            parts.append(f"  report: {self.report_dir / 'validation_result.json'}")
            parts.append(f"  data docs: {self.report_dir / 'data_docs' / 'index.html'}")
        return "\n".join(parts)


def _plain(value: Any) -> Any:
    """numpy scalars (also inside tuples and lists) as plain Python values, for printing."""
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(item) for item in value)
    return value.item() if hasattr(value, "item") else value


def _show(value: Any) -> str:
    value = _plain(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def _with_lookups(raw: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each table plus the lookup columns its suite checks (see the module docstring)."""
    views = dict(raw)
    orders = raw[s.ORDERS]
    orders = orders.assign(
        expected_order_number=_numeric(orders, s.ORDER_NUMBER)
        .groupby(_numeric(orders, s.USER_ID))
        .rank(method="first")
    )
    views[s.ORDERS] = orders
    order_ids = _numeric(orders, s.ORDER_ID)
    eval_set_by_order = pd.Series(
        orders[s.EVAL_SET].to_numpy() if s.EVAL_SET in orders else None, index=order_ids
    )
    eval_set_by_order = eval_set_by_order[~eval_set_by_order.index.duplicated()]
    product_ids = _numeric(raw[s.PRODUCTS], s.PRODUCT_ID)
    for table in (s.PRIOR_LINES, s.TRAIN_LINES):
        if table in raw:
            lines = raw[table]
            views[table] = lines.assign(
                order_eval_set=_numeric(lines, s.ORDER_ID).map(eval_set_by_order),
                product_in_catalogue=_numeric(lines, s.PRODUCT_ID).isin(product_ids),
            )
    products = raw[s.PRODUCTS]
    views[s.PRODUCTS] = products.assign(
        aisle_known=_numeric(products, s.AISLE_ID).isin(
            _numeric(raw.get(s.AISLES, pd.DataFrame()), s.AISLE_ID)
        ),
        department_known=_numeric(products, s.DEPARTMENT_ID).isin(
            _numeric(raw.get(s.DEPARTMENTS, pd.DataFrame()), s.DEPARTMENT_ID)
        ),
    )
    return views


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _narrow_integers(table: pa.Table) -> pa.Table:
    """Integer columns whose values all fit in int32 cast to it (lossless, and every type check
    accepts int8 to int64): Instacart's 33.8M prior lines then take half the memory."""
    columns = []
    for column in table.columns:
        if pa.types.is_int64(column.type) and len(column) and column.null_count < len(column):
            low, high = pc.min_max(column).values()
            if INT32_MIN <= low.as_py() and high.as_py() <= INT32_MAX:
                column = column.cast(pa.int32())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _read_raw(data_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every present Instacart file as read (no casting), and each table's file name."""
    if not data_dir.is_dir():
        raise DataFileError(data_dir, "is not a folder of Instacart-layout files")
    frames, files = {}, {}
    for table in (*s.REQUIRED_TABLES, *s.OPTIONAL_TABLES):
        path = find_table_file(data_dir, table)
        if path is None:
            if table in s.REQUIRED_TABLES:
                raise DataFileError(data_dir / f"{table}.csv", "not found: this file is required")
            continue
        frame = _narrow_integers(read_table_file(path, table, typed=False)).to_pandas(
            self_destruct=True
        )
        # GX's type checks know numpy/object dtypes, not pandas 3's `str`: text goes in as object.
        text = frame.select_dtypes(include=["string", "str"]).columns
        frames[table] = frame.astype({column: object for column in text})
        files[table] = path.name
    return frames, files


def load_suite_dicts(expectations_dir: Path | str | None = None) -> dict[str, dict]:
    """The suites in `expectations_dir` (default: the repo's `expectations/`), keyed by table."""
    folder = Path(
        expectations_dir or os.environ.get("BASKET_EXPECTATIONS", DEFAULT_EXPECTATIONS_DIR)
    )
    suites = {}
    for table in (*s.REQUIRED_TABLES, *s.OPTIONAL_TABLES):
        path = folder / f"{table}.json"
        if not path.is_file():
            raise DataFileError(path, "expectation suite not found")
        suites[table] = json.loads(path.read_text())
    return suites


def _failures(file: str, result, index_columns: list[str], present: set[str]) -> list[Failure]:
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        kwargs = config.kwargs
        column = kwargs.get("column") or ", ".join(
            kwargs.get("column_list")
            or [c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c]
        )
        details = item.result or {}
        error = None
        missing = [c for c in (column or "").split(", ") if c and c not in present]
        if missing:
            error = f"column {', '.join(missing)} is missing from the file"
        elif item.exception_info and item.exception_info.get("raised_exception"):
            error = str(item.exception_info.get("exception_message", "")).splitlines()[0][:300]
        failures.append(
            Failure(
                file=file,
                expectation=config.type,
                description=(config.meta or {}).get("description", config.type),
                column=column or None,
                unexpected_count=details.get("unexpected_count"),
                unexpected_percent=details.get("unexpected_percent"),
                examples=list(details.get("partial_unexpected_list") or [])[:EXAMPLES],
                example_rows=[
                    {k: row.get(k) for k in index_columns if k in row}
                    for row in (details.get("partial_unexpected_index_list") or [])[:EXAMPLES]
                    if isinstance(row, dict)
                ],
                observed=details.get("observed_value"),
                error=error,
                severity=(config.meta or {}).get("severity", "critical"),
                kwargs=dict(kwargs),
            )
        )
    return failures


def breaking_rows(frame: pd.DataFrame, failure: Failure) -> pd.Series | None:
    """The rows of `frame` that break a column-values rule (a boolean mask), or None when the
    rule is not one whose rows can be singled out."""
    column = failure.kwargs.get("column")
    if column not in frame:
        return None
    if failure.expectation == "expect_column_values_to_be_in_set":
        return ~frame[column].isin(failure.kwargs["value_set"])
    if failure.expectation == "expect_column_values_to_not_be_null":
        return frame[column].isna()
    return None


def triage(
    failures: list[Failure], views: dict, raw: dict, files: dict, max_share: float
) -> tuple[list[Failure], list[Failure], dict[str, pd.DataFrame]]:
    """(critical failures, warnings, quarantined raw rows per table with a `rule` column).

    A warning rule whose breaking rows are at most `max_share` of its file is a warning and
    its rows are quarantined; above the share, or when its rows cannot be singled out, it
    is critical like any other rule."""
    by_file = {file: table for table, file in files.items()}
    critical, warnings, masks = [], [], {}
    for failure in failures:
        table = by_file[failure.file]
        mask = breaking_rows(views[table], failure) if failure.severity == WARNING else None
        share = 0.0 if mask is None else mask.mean()
        if mask is None or share > max_share:
            if mask is not None:
                failure = replace(
                    failure,
                    severity="critical",
                    description=f"{failure.description} (a warning rule, but {share:.2%} of "
                    f"the rows break it: more than the {max_share:.2%} that may be quarantined)",
                )
            critical.append(failure)
            continue
        warnings.append(failure)
        masks.setdefault(table, []).append((mask.to_numpy(), failure.description))
    quarantine = {}
    for table, rules in masks.items():
        labels = pd.Series("", index=range(len(raw[table])), dtype=object)
        for mask, description in rules:  # a loop over rules; rows are handled as columns
            joined = labels.where(labels == "", labels + "; ") + description
            labels = labels.where(~mask, joined)
        hit = (labels != "").to_numpy()
        quarantine[table] = raw[table][hit].assign(rule=labels[hit].to_numpy())
    return critical, warnings, quarantine


def write_quarantine(folder: Path, quarantine: dict[str, pd.DataFrame]) -> None:
    """Each table's quarantined rows as folder/TABLE.parquet (an old quarantine is replaced)."""
    with atomic_dir(folder) as staging:
        for table, frame in quarantine.items():
            frame.to_parquet(staging / f"{table}.parquet", index=False)


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
    raw, files = _read_raw(data_dir)
    views = _with_lookups(raw)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    actions = []
    if report_dir is not None:
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="basket",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str((report_dir / "data_docs").resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["basket"])]
    source = context.data_sources.add_pandas("basket")

    failures, skipped, results, rows, run = [], [], {}, {}, 0
    for table, frame in views.items():
        suite_dict = dict(suites[table])
        kept = []
        for expectation in suite_dict["expectations"]:
            needs = (expectation.get("meta") or {}).get("requires")
            if needs and needs not in raw:
                skipped.append(
                    f"{files[table]}: '{expectation['meta']['description']}' needs {needs}"
                )
                continue
            kept.append(expectation)
        suite_dict["expectations"] = kept
        index_columns = suite_dict.get("meta", {}).get("unexpected_index_columns", [])
        suite = context.suites.add(gx.ExpectationSuite(**suite_dict))
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"basket_{table}",
                validation_definitions=[definition],
                actions=actions,
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": EXAMPLES,
                    "unexpected_index_column_names": [c for c in index_columns if c in frame],
                },
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
        result = next(iter(outcome.run_results.values()))
        results[table] = result.to_json_dict()
        failures += _failures(files[table], result, index_columns, set(frame.columns))
        rows[files[table]] = len(frame)
        run += len(kept)

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
