"""Load an Instacart-layout folder (CSV, gzipped CSV or parquet) into typed tables.

`load_tables` reads with pyarrow's multithreaded readers and casts every column to
the schema in `basket.data.schema`; nothing loops over rows. A missing or
unreadable file raises `DataFileError` naming the file and, where pyarrow tells,
the column, row and value, so the message can be acted on without a traceback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from basket.data import schema as s

SUFFIXES = (".parquet", ".csv", ".csv.gz")


class DataFileError(Exception):
    """A data file is missing, unreadable or of the wrong shape; the message says which and why."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class Tables:
    """The Instacart tables as pandas frames; `train_lines`, `aisles`, `departments` may be None."""

    orders: pd.DataFrame
    prior_lines: pd.DataFrame
    products: pd.DataFrame
    train_lines: pd.DataFrame | None = None
    aisles: pd.DataFrame | None = None
    departments: pd.DataFrame | None = None

    def frames(self) -> dict[str, pd.DataFrame]:
        """The tables that are present, keyed by their Instacart file name (without suffix)."""
        named = {
            s.ORDERS: self.orders,
            s.PRIOR_LINES: self.prior_lines,
            s.TRAIN_LINES: self.train_lines,
            s.PRODUCTS: self.products,
            s.AISLES: self.aisles,
            s.DEPARTMENTS: self.departments,
        }
        return {name: frame for name, frame in named.items() if frame is not None}


def find_table_file(data_dir: Path | str, table: str) -> Path | None:
    """The file holding `table` in `data_dir` (parquet preferred over CSV), or None."""
    data_dir = Path(data_dir)
    for suffix in SUFFIXES:
        candidate = data_dir / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_table_file(path: Path, table: str, typed: bool = True) -> pa.Table:
    """One Instacart file as an Arrow table.

    typed=True casts to the project schema (errors name the column and value);
    typed=False keeps the types the reader infers, so validation can report them.
    """
    expected = s.SCHEMAS[table]
    try:
        if path.name.endswith(".parquet"):
            arrow = pq.read_table(path)
        else:
            convert = pacsv.ConvertOptions(
                column_types=expected if typed else None,
                strings_can_be_null=False,
            )
            arrow = pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataFileError(path, f"cannot be read as {table}: {err}") from None
    missing = [name for name in expected.names if name not in arrow.column_names]
    if missing and typed:
        raise DataFileError(
            path,
            f"missing column(s) {missing}; found {arrow.column_names}. "
            f"Expected the Instacart layout: {expected.names}",
        )
    if not typed:
        return arrow
    arrow = arrow.select(expected.names)
    try:
        return arrow.cast(expected)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise DataFileError(path, f"a column does not fit the schema {expected}: {err}") from None


def load_tables(data_dir: Path | str, typed: bool = True) -> Tables:
    """Read an Instacart-layout folder into `Tables`.

    Required: orders, order_products__prior, products. Optional:
    order_products__train, aisles, departments. Raises DataFileError when the
    folder or a required file is missing or a file cannot be read.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataFileError(data_dir, "is not a folder of Instacart-layout files")
    frames: dict[str, pd.DataFrame | None] = {}
    for table in (*s.REQUIRED_TABLES, *s.OPTIONAL_TABLES):
        path = find_table_file(data_dir, table)
        if path is None:
            if table in s.REQUIRED_TABLES:
                raise DataFileError(
                    data_dir / f"{table}.csv",
                    f"not found (also looked for {table}.parquet and {table}.csv.gz); "
                    f"required files: {', '.join(s.REQUIRED_TABLES)}",
                )
            frames[table] = None
            continue
        arrow = read_table_file(path, table, typed=typed)
        frames[table] = arrow.to_pandas(split_blocks=True, self_destruct=True)
        del arrow
    return Tables(
        orders=frames[s.ORDERS],
        prior_lines=frames[s.PRIOR_LINES],
        products=frames[s.PRODUCTS],
        train_lines=frames[s.TRAIN_LINES],
        aisles=frames[s.AISLES],
        departments=frames[s.DEPARTMENTS],
    )


def data_fingerprint(data_dir: Path | str) -> str:
    """SHA-256 over the names and bytes of the Instacart files in `data_dir`.

    Recorded with every run and model, so a number in a report can be traced to
    the exact data it came from.
    """
    digest = hashlib.sha256()
    for table in (*s.REQUIRED_TABLES, *s.OPTIONAL_TABLES):
        path = find_table_file(data_dir, table)
        if path is None:
            continue
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()
