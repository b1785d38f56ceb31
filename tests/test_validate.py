"""Great Expectations validation: clean data passes; each kind of corruption is caught and named."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from basket.commands.cli import main
from basket.data import DataFileError
from basket.validation.suites import load_suite_dicts, range_checked_columns
from basket.validation.tables import narrow_integers, read_raw
from basket.validation.validate import validate


def _edit(folder, table, change):
    path = folder / f"{table}.csv"
    frame = change(pd.read_csv(path))
    frame.to_csv(path, index=False)


def _set(column, value, row=3):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return change


def _shift_user_order_numbers(frame):
    frame.loc[frame["user_id"] == 2, "order_number"] += 1
    return frame


def _gap_in_order_numbers(frame):
    user = frame["user_id"] == 3
    frame.loc[user & (frame["order_number"] >= 3), "order_number"] += 1
    return frame


def _days_on_first_order(frame):
    frame.loc[frame.index[frame["order_number"] == 1][0], "days_since_prior_order"] = 5
    return frame


def _no_days_on_later_order(frame):
    frame.loc[frame.index[frame["order_number"] == 4][0], "days_since_prior_order"] = np.nan
    return frame


def _orphan_products(share: float, first_id: int = 9_000_000):
    """Point `share` of the lines at products the catalogue lacks (each a different one)."""

    def change(frame):
        rows = frame.index[: max(1, round(share * len(frame)))]
        frame.loc[rows, "product_id"] = first_id + np.arange(len(rows))
        return frame

    return change


CORRUPTIONS = [
    # (what, table, change, file in summary, words the summary must contain)
    (
        "text in an integer column",
        "orders",
        _set("order_dow", "Monday"),
        "orders.csv",
        "order_dow holds integers",
    ),
    (
        "day of week out of range",
        "orders",
        _set("order_dow", 7),
        "orders.csv",
        "order_dow is a day of week",
    ),
    (
        "hour out of range",
        "orders",
        _set("order_hour_of_day", 24),
        "orders.csv",
        "order_hour_of_day is an hour",
    ),
    (
        "days above the cap",
        "orders",
        _set("days_since_prior_order", 31),
        "orders.csv",
        "lies in 0-30",
    ),
    (
        "days on a first order",
        "orders",
        _days_on_first_order,
        "orders.csv",
        "empty on a user's first order",
    ),
    (
        "days missing later",
        "orders",
        _no_days_on_later_order,
        "orders.csv",
        "every order after the first",
    ),
    (
        "unknown eval_set",
        "orders",
        _set("eval_set", "validation"),
        "orders.csv",
        "prior, train or test",
    ),
    ("null user", "orders", _set("user_id", np.nan), "orders.csv", "user_id is never empty"),
    (
        "duplicate order id",
        "orders",
        _set("order_id", 1, row=10),
        "orders.csv",
        "order_id identifies one order",
    ),
    ("order numbers not from 1", "orders", _shift_user_order_numbers, "orders.csv", "without gaps"),
    ("gap in order numbers", "orders", _gap_in_order_numbers, "orders.csv", "without gaps"),
    (
        "duplicate line",
        "order_products__prior",
        lambda f: pd.concat([f, f.iloc[[5]]]),
        "order_products__prior.csv",
        "a product appears once per order",
    ),
    (
        "line of a missing order",
        "order_products__prior",
        _set("order_id", 9_999_999),
        "order_products__prior.csv",
        "order_id exists in orders",
    ),
    (
        # A warning rule: one such line is quarantined (below); this many stop the run.
        "lines of a missing product, over the quarantine share",
        "order_products__train",
        _orphan_products(share=0.05),
        "order_products__train.csv",
        "product_id exists in products (a warning rule, but 4.98% of the rows",
    ),
    (
        "null product",
        "order_products__prior",
        _set("product_id", np.nan),
        "order_products__prior.csv",
        "never empty",
    ),
    (
        "product of a missing aisle",
        "products",
        _set("aisle_id", 999),
        "products.csv",
        "aisle_id exists in aisles",
    ),
    (
        "missing column",
        "products",
        lambda f: f.drop(columns=["department_id"]),
        "products.csv",
        "department_id",
    ),
]


def test_clean_synthetic_data_passes(synth_dir, tmp_path):
    report = validate(synth_dir, report_dir=tmp_path / "report")
    assert report.success, report.summary()
    assert report.expectations_run > 50
    assert "Validation passed" in report.summary()
    result = json.loads((tmp_path / "report" / "validation_result.json").read_text())
    assert result["success"] is True and "orders" in result["suites"]
    assert (tmp_path / "report" / "data_docs" / "index.html").is_file()


@pytest.mark.parametrize(
    ("what", "table", "change", "file", "words"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS]
)
def test_corruption_is_caught_and_named(data_copy, what, table, change, file, words):
    _edit(data_copy, table, change)
    report = validate(data_copy)
    assert not report.success, f"{what} was not caught"
    matching = [f for f in report.failures if f.file == file and words in f.describe()]
    assert matching, f"{what}: no failure in {file} mentioning {words!r}:\n{report.summary()}"


def test_summary_shows_counts_examples_and_row_ids(data_copy):
    _edit(data_copy, "orders", _set("order_dow", 9))
    summary = validate(data_copy).summary()
    assert "Validation FAILED" in summary
    assert "orders.csv · order_dow" in summary
    assert "1 row(s)" in summary and "e.g. 9" in summary
    assert "order_id=" in summary and "user_id=" in summary


def test_missing_optional_files_skip_their_checks(data_copy):
    (data_copy / "aisles.csv").unlink()
    report = validate(data_copy)
    assert report.success, report.summary()
    assert any("needs aisles" in reason for reason in report.skipped)


def test_missing_required_file_is_a_clear_error(data_copy):
    (data_copy / "order_products__prior.csv").unlink()
    with pytest.raises(DataFileError, match="order_products__prior"):
        validate(data_copy)


def test_cli_exit_codes(data_copy, tmp_path, capsys):
    assert main(["validate", str(data_copy), "--report", str(tmp_path / "r")]) == 0
    _edit(data_copy, "orders", _set("order_hour_of_day", 25))
    assert main(["validate", str(data_copy)]) == 1
    assert "order_hour_of_day is an hour" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_cli_synth_writes_a_valid_folder(tmp_path, capsys):
    assert main(["synth", "--users", "120", "--seed", "5", "--out", str(tmp_path / "d")]) == 0
    assert "120 users" in capsys.readouterr().out
    assert validate(tmp_path / "d").success


def test_a_few_lines_of_unknown_products_are_quarantined_and_the_run_goes_on(data_copy, tmp_path):
    _edit(data_copy, "order_products__prior", _orphan_products(share=0.001))
    report = validate(data_copy, report_dir=tmp_path / "report")
    assert report.success, report.summary()
    assert [w.column for w in report.warnings] == ["product_in_catalogue"]
    quarantined = pd.read_parquet(
        tmp_path / "report" / "quarantine" / "order_products__prior.parquet"
    )
    assert len(quarantined) == report.quarantined["order_products__prior.csv"] > 0
    assert (quarantined["product_id"] >= 9_000_000).all()
    assert set(quarantined["rule"]) == {"every line's product_id exists in products"}
    summary = report.summary()
    assert "passed with 1 warning(s)" in summary and "quarantine" in summary
    assert "⚠ order_products__prior.csv · product_in_catalogue" in summary


def test_the_quarantine_share_is_a_setting(data_copy):
    _edit(data_copy, "order_products__prior", _orphan_products(share=0.001))
    assert not validate(data_copy, max_warning_share=0.0).success


def test_quarantined_lines_stay_out_of_training_and_scoring(data_copy, xgb_run_dir, tmp_path):
    """Through the pipeline's own stages: validate → prepare (training data), and batch scoring
    scores as if the quarantined lines had never been in the files."""
    from basket.config.run import RunConfig
    from basket.data.prepare import Prepared
    from basket.serving.batch import score_users
    from basket.training.retrain import prepare_stage, validate_stage

    _edit(data_copy, "order_products__prior", _orphan_products(share=0.005))
    run = tmp_path / "run"
    validate_stage(data_copy, run)  # passes, with a quarantine
    prepare_stage(data_copy, run, RunConfig())
    assert not (Prepared.load(run / "prepared").splits.eval_inputs.product_ids >= 9_000_000).any()

    removed = tmp_path / "removed"
    shutil.copytree(data_copy, removed)
    _edit(removed, "order_products__prior", lambda f: f[f["product_id"] < 9_000_000])
    model = xgb_run_dir / "winner"

    def scored(folder, name, **kwargs):
        return pd.read_parquet(score_users(model, folder, tmp_path / name, **kwargs).out_path)

    kept = scored(data_copy, "kept.parquet", quarantine=run / "validation" / "quarantine")
    pd.testing.assert_frame_equal(kept, scored(removed, "removed.parquet"))
    assert not kept.equals(scored(data_copy, "all.parquet"))  # the lines did matter


def test_integer_columns_are_read_narrow_only_when_every_value_fits():
    """Validation reads 33.8M Instacart lines: int32 halves their memory, but an id beyond
    int32 must reach the checks (and the report) as it is, not wrapped around."""
    table = pa.table(
        {"small": [1, 2, 3], "huge": [1, 2, 2**40], "empty": pa.array([None] * 3, pa.int64())}
    )
    narrow = narrow_integers(table)
    assert narrow.schema.field("small").type == pa.int8()
    assert narrow.schema.field("huge").type == pa.int64()
    assert narrow.column("huge").to_pylist() == [1, 2, 2**40]
    assert narrow.column("small").to_pylist() == [1, 2, 3]
    assert narrow_integers(pa.table({"mid": [1, 40_000]})).schema.field("mid").type == pa.int32()


def test_columns_checked_against_a_range_reach_great_expectations_as_int64(synth_dir):
    """GX compares only int64/float64 columns with a range in one vectorised step; any other
    integer dtype costs one Python call per value (38 of 70 s on Instacart's 33.8M lines)."""
    wide = range_checked_columns(load_suite_dicts())
    assert "add_to_cart_order" in wide["order_products__prior"]
    raw, _ = read_raw(synth_dir, wide)
    assert raw["order_products__prior"]["add_to_cart_order"].dtype == np.int64
    assert raw["orders"]["order_dow"].dtype == np.int64
    assert raw["order_products__prior"]["reordered"].dtype == np.int8  # unchecked: narrowed
