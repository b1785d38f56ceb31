"""Loading Instacart-layout folders: CSV, parquet, gzip, optional train file, clear errors."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from basket.data import DataFileError, data_fingerprint, load_tables
from basket.data import schema as s


def test_csv_folder_loads_with_the_schema_types(synth_dir):
    tables = load_tables(synth_dir)
    assert list(tables.orders.columns) == s.SCHEMAS[s.ORDERS].names
    assert tables.orders[s.ORDER_ID].dtype == "int32"
    assert tables.prior_lines[s.REORDERED].dtype == "int8"
    assert tables.orders[s.DAYS_SINCE_PRIOR].isna().sum() == tables.orders[s.USER_ID].nunique()
    assert tables.train_lines is not None and len(tables.train_lines) > 0
    assert set(tables.frames()) == {*s.REQUIRED_TABLES, *s.OPTIONAL_TABLES}


def test_parquet_folder_loads_the_same_tables_as_csv(synth_dir, tmp_path):
    for csv in synth_dir.glob("*.csv"):
        pq.write_table(pacsv.read_csv(csv), tmp_path / f"{csv.stem}.parquet")
    from_csv, from_parquet = load_tables(synth_dir), load_tables(tmp_path)
    for name, frame in from_csv.frames().items():
        pd.testing.assert_frame_equal(frame, from_parquet.frames()[name])


def test_gzipped_csv_is_read(synth_dir, tmp_path):
    import gzip

    for csv in synth_dir.glob("*.csv"):
        with gzip.open(tmp_path / f"{csv.name}.gz", "wb") as out:
            out.write(csv.read_bytes())
    assert len(load_tables(tmp_path).prior_lines) == len(load_tables(synth_dir).prior_lines)


def test_train_file_is_optional(data_copy):
    (data_copy / "order_products__train.csv").unlink()
    (data_copy / "aisles.csv").unlink()
    tables = load_tables(data_copy)
    assert tables.train_lines is None and tables.aisles is None
    assert len(tables.prior_lines) > 0


def test_missing_required_file_names_it(data_copy):
    (data_copy / "orders.csv").unlink()
    with pytest.raises(DataFileError, match=r"orders\.csv.*not found"):
        load_tables(data_copy)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataFileError, match="not a folder"):
        load_tables(tmp_path / "nowhere")


def test_bad_value_names_file_column_and_value(data_copy):
    path = data_copy / "orders.csv"
    text = path.read_text().splitlines()
    fields = text[5].split(",")
    fields[4] = "Monday"  # order_dow
    text[5] = ",".join(fields)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataFileError) as caught:
        load_tables(data_copy)
    message = str(caught.value)
    assert "orders.csv" in message and "Monday" in message


def test_missing_column_is_named(data_copy):
    frame = pd.read_csv(data_copy / "products.csv").drop(columns=["aisle_id"])
    frame.to_csv(data_copy / "products.csv", index=False)
    with pytest.raises(DataFileError, match=r"products\.csv.*missing column.*aisle_id"):
        load_tables(data_copy)


def test_fingerprint_changes_with_the_bytes(synth_dir, data_copy):
    assert data_fingerprint(synth_dir) == data_fingerprint(data_copy)
    with (data_copy / "products.csv").open("a") as handle:
        handle.write("99999,Extra Product,1,1\n")
    assert data_fingerprint(synth_dir) != data_fingerprint(data_copy)
    shutil.rmtree(data_copy)
