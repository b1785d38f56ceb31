"""The Great Expectations side: the suites in `expectations/`, and running them on the tables
(an ephemeral context, Data Docs in the report folder when there is one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import great_expectations as gx
import pandas as pd

from basket.data import schema as s
from basket.data.load import DataFileError
from basket.resources import shipped
from basket.validation.report import EXAMPLES, Failure, failures_from_result

DEFAULT_EXPECTATIONS_DIR = shipped("expectations")


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


def range_checked_columns(suites: dict[str, dict]) -> dict[str, frozenset[str]]:
    """Per table, the columns its suite checks against a range (`expect_column_values_to_be_
    between`): validation reads them as int64 so the check is vectorised (`narrow_integers`)."""
    return {
        table: frozenset(
            e["kwargs"]["column"]
            for e in suite["expectations"]
            if e["type"] == "expect_column_values_to_be_between"
        )
        for table, suite in suites.items()
    }


def run_suites(
    views: dict[str, pd.DataFrame],
    raw: dict[str, pd.DataFrame],
    files: dict[str, str],
    suites: dict[str, dict],
    report_dir: Path | None,
) -> tuple[list[Failure], list[str], dict, dict[str, int], int]:
    """Each table's suite on its view: (failures, skipped rules, GX results per table, rows per
    file, expectations run). Rules whose `requires` table is absent are skipped."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    actions = []
    if report_dir is not None:
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
        failures += failures_from_result(files[table], result, index_columns, set(frame.columns))
        rows[files[table]] = len(frame)
        run += len(kept)
    return failures, skipped, results, rows, run
