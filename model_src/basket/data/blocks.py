"""A data folder read one block of customers at a time, so batch scoring's memory does not grow
with the number of customers.

`user_blocks` makes one streaming pass over the order-line files, sends every
line to its customer's block (order id -> customer -> block, by sorted search)
and spills each block to a temporary parquet file; then it yields each block
as `Tables` holding only that block's customers. In memory at once: the
orders table, the catalogue, one record batch and one block. When every
customer fits in one block it simply loads the folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from basket.data import schema as s
from basket.data.load import DataFileError, Tables, find_table_file, load_tables, read_table_file

BATCH_BYTES = 64 << 20


def read_frame(data_dir: Path | str, table: str) -> pd.DataFrame | None:
    """One whole table of `data_dir` as a typed frame (None if the optional file is absent)."""
    path = find_table_file(data_dir, table)
    if path is None:
        if table in s.REQUIRED_TABLES:
            raise DataFileError(Path(data_dir) / f"{table}.csv", "not found")
        return None
    return read_table_file(path, table).to_pandas()


def scoring_user_ids(orders: pd.DataFrame) -> np.ndarray:
    """Sorted ids of the customers batch scoring predicts for: those with a `test` order, or
    every customer when none has one (tests read the same from histories:
    `basket.testing.histories.scoring_users`)."""
    test = orders[s.EVAL_SET] == "test"
    return np.unique(orders.loc[test if test.any() else slice(None), s.USER_ID].to_numpy())


def line_batches(path: Path, table: str) -> Iterator[pa.RecordBatch]:
    """The rows of an order-line file (CSV, CSV.gz or parquet) in typed record batches."""
    schema = s.SCHEMAS[table]
    try:
        if path.name.endswith(".parquet"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 21):
                yield pa.RecordBatch.from_arrays(
                    [batch.column(name).cast(field.type) for name, field in zip(
                        schema.names, schema, strict=True)],
                    schema=schema,
                )  # fmt: skip
            return
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BATCH_BYTES),
            convert_options=pacsv.ConvertOptions(column_types=schema, include_columns=schema.names),
        )
        yield from reader
    except (pa.ArrowInvalid, OSError, KeyError) as err:
        raise DataFileError(path, f"cannot be read as {table}: {err}") from None


def user_blocks(
    data_dir: Path | str,
    user_ids: np.ndarray,
    users_per_block: int,
    orders: pd.DataFrame | None = None,
) -> Iterator[Tables]:
    """`Tables` for consecutive blocks of `user_ids` (sorted), each with only its customers."""
    data_dir = Path(data_dir)
    orders = read_frame(data_dir, s.ORDERS) if orders is None else orders
    orders = orders[orders[s.USER_ID].isin(user_ids)]
    products = read_frame(data_dir, s.PRODUCTS)
    if len(user_ids) <= users_per_block:
        tables = load_tables(data_dir)
        yield Tables(orders, tables.prior_lines, products, tables.train_lines)
        return
    n_blocks = -(-len(user_ids) // users_per_block)
    block_of_user = np.arange(len(user_ids)) // users_per_block
    order_ids = orders[s.ORDER_ID].to_numpy()
    by_id = np.argsort(order_ids, kind="stable")
    sorted_ids = order_ids[by_id]
    order_user_block = block_of_user[np.searchsorted(user_ids, orders[s.USER_ID].to_numpy())]
    order_block = order_user_block[by_id]
    with tempfile.TemporaryDirectory(prefix="basket-blocks-") as spill:
        spilled = {table: _spill(data_dir, table, sorted_ids, order_block, n_blocks, Path(spill))
                   for table in (s.PRIOR_LINES, s.TRAIN_LINES)}  # fmt: skip
        for block in range(n_blocks):
            lines = {table: _read_block(files, block, table) for table, files in spilled.items()}
            yield Tables(
                orders[order_user_block == block],
                lines[s.PRIOR_LINES],
                products,
                lines[s.TRAIN_LINES] if spilled[s.TRAIN_LINES] is not None else None,
            )


def _spill(data_dir, table, sorted_ids, order_block, n_blocks, spill: Path) -> list[Path] | None:
    """Route `table`'s lines to one parquet file per block; None if the file is absent."""
    path = find_table_file(data_dir, table)
    if path is None:
        return None
    files = [spill / f"{table}-{block}.parquet" for block in range(n_blocks)]
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in line_batches(path, table):
            ids = batch.column(s.ORDER_ID).to_numpy()
            pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
            # Lines of orders outside the chosen customers (or unknown orders) go nowhere.
            block = np.where(sorted_ids[pos] == ids, order_block[pos], -1)
            for b in np.unique(block[block >= 0]):
                if b not in writers:
                    writers[b] = pq.ParquetWriter(files[b], s.SCHEMAS[table])
                writers[b].write_batch(batch.filter(pa.array(block == b)))
    finally:
        for writer in writers.values():
            writer.close()
    return files


def _read_block(files: list[Path] | None, block: int, table: str) -> pd.DataFrame | None:
    if files is None:
        return None
    if not files[block].exists():
        return s.SCHEMAS[table].empty_table().to_pandas()
    return pq.read_table(files[block]).to_pandas()
