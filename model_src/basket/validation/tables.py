"""The files of a data folder as validation reads them: as on disk (integers narrowed where
lossless), plus the lookup columns the suites check (see `basket.validate`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from basket.data import schema as s
from basket.data.load import DataFileError, find_table_file, read_table_file


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """`column` as numbers (NaN where it is missing or not a number)."""
    if column not in frame:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def with_lookups(raw: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each table plus the lookup columns its suite checks (see the module docstring)."""
    views = dict(raw)
    orders = raw[s.ORDERS]
    orders = orders.assign(
        expected_order_number=numeric(orders, s.ORDER_NUMBER)
        .groupby(numeric(orders, s.USER_ID))
        .rank(method="first")
    )
    views[s.ORDERS] = orders
    order_ids = numeric(orders, s.ORDER_ID)
    eval_set_by_order = pd.Series(
        orders[s.EVAL_SET].to_numpy() if s.EVAL_SET in orders else None, index=order_ids
    )
    eval_set_by_order = eval_set_by_order[~eval_set_by_order.index.duplicated()]
    product_ids = numeric(raw[s.PRODUCTS], s.PRODUCT_ID)
    for table in (s.PRIOR_LINES, s.TRAIN_LINES):
        if table in raw:
            lines = raw[table]
            views[table] = lines.assign(
                order_eval_set=numeric(lines, s.ORDER_ID).map(eval_set_by_order),
                product_in_catalogue=numeric(lines, s.PRODUCT_ID).isin(product_ids),
            )
    products = raw[s.PRODUCTS]
    views[s.PRODUCTS] = products.assign(
        aisle_known=numeric(products, s.AISLE_ID).isin(
            numeric(raw.get(s.AISLES, pd.DataFrame()), s.AISLE_ID)
        ),
        department_known=numeric(products, s.DEPARTMENT_ID).isin(
            numeric(raw.get(s.DEPARTMENTS, pd.DataFrame()), s.DEPARTMENT_ID)
        ),
    )
    return views


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def narrow_integers(table: pa.Table) -> pa.Table:
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


def read_raw(data_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
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
        frame = narrow_integers(read_table_file(path, table, typed=False)).to_pandas(
            self_destruct=True
        )
        # GX's type checks know numpy/object dtypes, not pandas 3's `str`: text goes in as object.
        text = frame.select_dtypes(include=["string", "str"]).columns
        frames[table] = frame.astype({column: object for column in text})
        files[table] = path.name
    return frames, files
