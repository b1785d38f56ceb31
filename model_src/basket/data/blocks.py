"""A data folder read one block of customers at a time, so batch scoring's memory does not grow
with the number of customers.

`user_blocks` makes one streaming pass over the order-line files, sends every
line to its customer's block (order id -> customer -> block, by sorted search)
and spills each block to a temporary parquet file; then it yields each block
as `Tables` holding only that block's customers. In memory at once: the
orders table, the catalogue, one record batch and one block. When every
customer fits in one block it simply loads the folder.

`partition_customers` makes the same pass once for a whole batch run and keeps
each part as a data folder of its own, so every shard reads only its customers.
`split_tables` cuts a block already in memory into smaller parts, so batch scoring
builds histories a chunk of customers at a time while the previous chunk is scored.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from basket.data import schema as s
from basket.data.load import DataFileError, Tables, find_table_file, load_tables, read_table_file
from basket.io.background import write_behind

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
    routing = OrderRouting.of(orders, user_ids, np.arange(len(user_ids)) // users_per_block)
    with tempfile.TemporaryDirectory(prefix="basket-blocks-") as spill:
        spilled = {
            table: routing.spill(data_dir, table, [
                Path(spill) / f"{table}-{block}.parquet" for block in range(routing.n_blocks)])
            for table in (s.PRIOR_LINES, s.TRAIN_LINES)
        }  # fmt: skip
        for block in range(routing.n_blocks):
            lines = {table: _read_block(files, block, table) for table, files in spilled.items()}
            yield Tables(
                orders[routing.block_of_order == block],
                lines[s.PRIOR_LINES],
                products,
                lines[s.TRAIN_LINES] if spilled[s.TRAIN_LINES] is not None else None,
            )


def split_tables(tables: Tables, users_per_part: int) -> Iterator[Tables]:
    """`tables` cut into consecutive parts of at most `users_per_part` of its customers (those
    with orders, by id), each with only its customers' orders and lines, in memory: one stable
    sort of each line table, then a slice per part. Lines of no order in `tables` go nowhere,
    as `build_histories` ignores them. Built histories of one part can be scored while the next
    part's are built."""
    user_ids = np.unique(tables.orders[s.USER_ID].to_numpy())
    if len(user_ids) <= users_per_part:
        yield tables
        return
    routing = OrderRouting.of(tables.orders, user_ids, np.arange(len(user_ids)) // users_per_part)
    grouped = {
        name: (lines, *_grouped_rows(lines, routing))
        for name in ("prior_lines", "train_lines")
        if (lines := getattr(tables, name)) is not None
    }
    for part in range(routing.n_blocks):
        lines = {
            name: frame.iloc[rows[bounds[part] : bounds[part + 1]]].reset_index(drop=True)
            for name, (frame, rows, bounds) in grouped.items()
        }
        yield Tables(
            tables.orders[routing.block_of_order == part],
            lines["prior_lines"],
            tables.products,
            lines.get("train_lines"),
        )


def _grouped_rows(lines: pd.DataFrame, routing: OrderRouting) -> tuple[np.ndarray, np.ndarray]:
    """(the row numbers of `lines` grouped by block in a stable order, where each block's rows
    start: n_blocks + 1 positions); rows of no block come first and are in none."""
    block = routing.blocks_of(lines[s.ORDER_ID].to_numpy())
    rows = np.argsort(block, kind="stable")
    return rows, np.searchsorted(block[rows], np.arange(routing.n_blocks + 1))


def part_bounds(n_users: int, parts: int) -> np.ndarray:
    """Where each of `parts` contiguous, nearly equal parts of `n_users` starts (and the last
    ends): `parts + 1` positions."""
    return np.linspace(0, n_users, parts + 1).astype(np.int64)


def partition_customers(
    data_dir: Path | str,
    user_ids: np.ndarray,
    parts: int,
    out_dir: Path | str,
    orders: pd.DataFrame | None = None,
) -> list[Path]:
    """Write `parts` contiguous parts of `user_ids` (sorted; cut by `part_bounds`) as data
    folders `out_dir/part-NNNNN/`, each in the Instacart layout (parquet) with only its
    customers' orders and lines, and the catalogue, in one streaming pass over the line files;
    returns the folders in order. A batch shard then reads its own folder, not every line.
    `orders`: the folder's orders table when the caller has read it already."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)  # a re-planned run starts from nothing
    orders = read_frame(data_dir, s.ORDERS) if orders is None else orders
    orders = orders[orders[s.USER_ID].isin(user_ids)]
    block_of_user = (
        np.searchsorted(part_bounds(len(user_ids), parts), np.arange(len(user_ids)), "right") - 1
    )
    routing = OrderRouting.of(orders, user_ids, block_of_user)
    parts = [out_dir / f"part-{block:05d}" for block in range(routing.n_blocks)]
    for part in parts:
        part.mkdir(parents=True, exist_ok=True)
    for table in (s.PRIOR_LINES, s.TRAIN_LINES):
        files = routing.spill(data_dir, table, [part / f"{table}.parquet" for part in parts])
        for file in files or []:
            if table in s.REQUIRED_TABLES and not file.exists():
                pq.write_table(s.SCHEMAS[table].empty_table(), file)
    products = read_table_file(find_table_file(data_dir, s.PRODUCTS), s.PRODUCTS)
    for block, part in enumerate(parts):
        part_orders = orders[routing.block_of_order == block]
        table = pa.Table.from_pandas(part_orders, preserve_index=False)
        pq.write_table(table, part / f"{s.ORDERS}.parquet")
        pq.write_table(products, part / f"{s.PRODUCTS}.parquet")
    return parts


@dataclass(frozen=True)
class OrderRouting:
    """Which block of customers each order belongs to: per row of the orders it was made from
    (`block_of_order`), and by order id (`block_by_id`, a table indexed by the id when the
    ids are small enough for one, else `sorted_ids` and `sorted_block` to search)."""

    block_of_order: np.ndarray
    sorted_ids: np.ndarray
    sorted_block: np.ndarray
    block_by_id: np.ndarray | None
    n_blocks: int

    @classmethod
    def of(
        cls, orders: pd.DataFrame, user_ids: np.ndarray, block_of_user: np.ndarray
    ) -> OrderRouting:
        """The routing of `orders` (only customers of `user_ids`, sorted) into the blocks
        `block_of_user` gives each of `user_ids` (0, 1, ... in order)."""
        n_blocks = int(block_of_user[-1]) + 1 if len(block_of_user) else 1
        dtype = np.int16 if n_blocks <= np.iinfo(np.int16).max else np.int32
        block_of_order = block_of_user[np.searchsorted(user_ids, orders[s.USER_ID].to_numpy())]
        block_of_order = block_of_order.astype(dtype)
        order_ids = orders[s.ORDER_ID].to_numpy()
        by_id = np.argsort(order_ids, kind="stable")
        sorted_ids, sorted_block = order_ids[by_id], block_of_order[by_id]
        block_by_id = None
        # Order ids are usually dense (Instacart's, the importer's): then a table indexed by id
        # routes a line in one gather instead of a binary search over every order.
        if len(sorted_ids) and sorted_ids[0] >= 0 and sorted_ids[-1] < 4 * len(orders) + (1 << 20):
            block_by_id = np.full(int(sorted_ids[-1]) + 1, -1, dtype)
            block_by_id[sorted_ids] = sorted_block
        return cls(block_of_order, sorted_ids, sorted_block, block_by_id, n_blocks)

    def blocks_of(self, order_ids: np.ndarray) -> np.ndarray:
        """The block of each of `order_ids`; -1 for an order of no chosen customer (or none)."""
        if self.block_by_id is not None:
            table = self.block_by_id
            inside = (order_ids >= 0) & (order_ids < len(table))
            return np.where(inside, table[np.where(inside, order_ids, 0)], -1).astype(table.dtype)
        pos = np.minimum(np.searchsorted(self.sorted_ids, order_ids), len(self.sorted_ids) - 1)
        return np.where(self.sorted_ids[pos] == order_ids, self.sorted_block[pos], -1)

    def spill(self, data_dir: Path, table: str, files: list[Path]) -> list[Path] | None:
        """Route `table`'s lines into `files` (one parquet file per block, lines in the file's
        order; a block without lines gets none); None if `data_dir` has no such file. Each
        record batch is grouped by block in one stable sort, and written in a background
        thread while the next one is read and routed."""
        path = find_table_file(data_dir, table)
        if path is None:
            return None
        if not len(self.sorted_ids):
            return files
        writers: dict[int, pq.ParquetWriter] = {}

        def write(grouped: pa.RecordBatch, blocks: np.ndarray, starts: np.ndarray) -> None:
            for b, start, end in zip(blocks.tolist(), starts[:-1], starts[1:], strict=True):
                if b not in writers:
                    writers[b] = pq.ParquetWriter(files[b], s.SCHEMAS[table])
                writers[b].write_batch(grouped.slice(start, end - start))

        try:
            with write_behind() as submit:
                for batch in line_batches(path, table):
                    block = self.blocks_of(batch.column(s.ORDER_ID).to_numpy())
                    # Lines of orders outside the chosen customers (or unknown orders) go nowhere.
                    order = np.argsort(block, kind="stable")
                    routed = np.searchsorted(block[order], 0)  # the first line with a block
                    order = order[routed:]
                    sorted_block = block[order]
                    blocks = np.flatnonzero(np.diff(sorted_block, prepend=-1))
                    starts = np.append(blocks, len(order))
                    submit(write, batch.take(pa.array(order)), sorted_block[blocks], starts)
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
