"""Warning rules: rows breaking them are quarantined while they are few enough, else the rule
fails the data like any other."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from basket.io.atomic import atomic_dir
from basket.validation.report import WARNING, Failure

# The share of a file's rows a warning rule may quarantine before it stops the run.
DEFAULT_WARNING_SHARE = 0.01


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
