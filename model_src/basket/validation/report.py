"""What validation found, in terms a person can act on: each failed expectation (`Failure`)
and the outcome of a folder (`ValidationReport`), with their text; and the translation of a
Great Expectations suite result into failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = 5  # example values and rows kept per failure
WARNING = "warning"


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
                found += "; e.g. " + ", ".join(show(v) for v in self.examples[:EXAMPLES])
            lines.append("      " + found)
            if self.example_rows:
                rows = "; ".join(
                    ", ".join(f"{k}={show(v)}" for k, v in row.items())
                    for row in self.example_rows[:3]
                )
                lines.append(f"      at rows with {rows}")
        else:
            lines.append(f"      found: {show(self.observed)}")
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


def plain(value: Any) -> Any:
    """numpy scalars (also inside tuples and lists) as plain Python values, for printing."""
    if isinstance(value, (tuple, list)):
        return type(value)(plain(item) for item in value)
    return value.item() if hasattr(value, "item") else value


def show(value: Any) -> str:
    value = plain(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def failures_from_result(
    file: str, result, index_columns: list[str], present: set[str]
) -> list[Failure]:
    """The failed expectations of one GX suite `result` on `file` (its columns `present`)."""
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
