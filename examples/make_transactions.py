"""Writes examples/transactions.csv: a small retailer-style transaction log (one line per
product bought) for the "Your own data" guide, made from `basket synth`'s generator so that it
has real-looking repurchase cycles. Same seed, same bytes.

    python examples/make_transactions.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from basket.data.synth import SynthConfig, write_synthetic

HERE = Path(__file__).resolve().parent
FIRST_DAY = pd.Timestamp("2026-01-04")  # a Sunday: order_dow 0


def transactions(data: Path) -> pd.DataFrame:
    """The synthetic folder's orders with lines as a log: customer, receipt, time, SKU,
    description, category and department."""
    orders = pd.read_csv(data / "orders.csv")
    lines = pd.concat(
        [pd.read_csv(data / f"order_products__{part}.csv") for part in ("prior", "train")]
    )
    products = (
        pd.read_csv(data / "products.csv")
        .merge(pd.read_csv(data / "aisles.csv"), on="aisle_id")
        .merge(pd.read_csv(data / "departments.csv"), on="department_id")
    )
    orders = orders.sort_values(["user_id", "order_number"])
    gap = orders["days_since_prior_order"].fillna(0)
    day = gap.groupby(orders["user_id"]).cumsum() + orders["user_id"] % 7
    # Each customer's first day is a day whose weekday is their first order's order_dow.
    shift = (orders["order_dow"] - (FIRST_DAY + pd.to_timedelta(day, "D")).dt.day_of_week - 1) % 7
    start = shift.groupby(orders["user_id"]).transform("first")
    orders["at"] = (
        FIRST_DAY
        + pd.to_timedelta(day + start, "D")
        + pd.to_timedelta(orders["order_hour_of_day"], "h")
    )
    log = lines.merge(orders, on="order_id").merge(products, on="product_id")
    log["at"] += pd.to_timedelta(log["add_to_cart_order"], "min")
    log = log.sort_values(["user_id", "at"])
    return pd.DataFrame(
        {
            "customer_id": log["user_id"] + 1000,
            "receipt_id": log["order_id"] + 500_000,
            "purchased_at": log["at"].dt.strftime("%Y-%m-%d %H:%M"),
            "sku": "SKU-" + log["product_id"].astype(str).str.zfill(5),
            "description": log["product_name"],
            "category": log["aisle"],
            "department": log["department"],
        }
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = SynthConfig(users=120, seed=11, products=400, orders_mean=9.0, min_orders=5)
        write_synthetic(config, folder)
        log = transactions(Path(folder))
    log.to_csv(HERE / "transactions.csv", index=False)
    print(f"wrote {HERE / 'transactions.csv'}: {len(log):,} lines, "
          f"{log['customer_id'].nunique()} customers, {log['receipt_id'].nunique()} baskets")  # fmt: skip


if __name__ == "__main__":
    main()
