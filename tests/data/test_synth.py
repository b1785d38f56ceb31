"""The synthetic generator: determinism and the Instacart-like structure it plants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from basket.data import load_tables
from basket.data.synth import SynthConfig, generate, write_synthetic


def test_same_seed_gives_the_same_bytes(tmp_path):
    first = write_synthetic(SynthConfig(users=200, seed=11), tmp_path / "a")
    second = write_synthetic(SynthConfig(users=200, seed=11), tmp_path / "b")
    other = write_synthetic(SynthConfig(users=200, seed=12), tmp_path / "c")
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    assert (first / "orders.csv").read_bytes() != (other / "orders.csv").read_bytes()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reorder_share_and_basket_size_are_instacart_like(seed):
    tables = generate(SynthConfig(users=400, seed=seed))
    reordered = tables.prior_lines["reordered"].to_numpy()
    sizes = np.bincount(tables.prior_lines["order_id"].to_numpy())
    sizes = sizes[sizes > 0]
    assert 0.50 <= reordered.mean() <= 0.65
    assert 8 <= sizes.mean() <= 12
    assert sizes.max() > 3 * sizes.mean()  # a long tail of big baskets


def test_days_since_prior_is_nan_exactly_on_first_orders(synth_dir):
    orders = load_tables(synth_dir).orders
    first = orders["order_number"] == 1
    assert orders.loc[first, "days_since_prior_order"].isna().all()
    assert orders.loc[~first, "days_since_prior_order"].notna().all()
    assert orders["days_since_prior_order"].max() == 30
    assert (
        orders["days_since_prior_order"] == 30
    ).mean() > 0.05  # the cap's spike, as in Instacart


def test_eval_set_marks_each_users_last_order(synth_dir):
    tables = load_tables(synth_dir)
    orders = tables.orders
    last = orders["order_number"] == orders.groupby("user_id")["order_number"].transform("max")
    assert set(orders.loc[last, "eval_set"]) == {"train", "test"}
    assert (orders.loc[~last, "eval_set"] == "prior").all()
    train_orders = set(orders.loc[orders["eval_set"] == "train", "order_id"])
    assert set(tables.train_lines["order_id"]) == train_orders
    test_orders = set(orders.loc[orders["eval_set"] == "test", "order_id"])
    assert not test_orders & set(tables.prior_lines["order_id"])


def test_catalogue_has_realistic_names_and_power_law_popularity(synth_dir):
    tables = load_tables(synth_dir)
    names = set(tables.products["product_name"])
    assert {"Banana", "Organic Strawberries", "Organic Whole Milk", "Organic Baby Spinach"} <= names
    counts = tables.prior_lines["product_id"].value_counts().to_numpy()
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.4  # the top 10% of products carry a large share of lines


def test_bundled_products_are_bought_together(synth_dir):
    import json

    tables = load_tables(synth_dir)
    bundles = np.array(json.loads((synth_dir / "synth_truth.json").read_text())["bundles"])
    lines = tables.prior_lines
    baskets = lines.groupby("order_id")["product_id"].apply(set)

    def together_rate(pairs: np.ndarray) -> float:
        with_first = together = 0
        for first, second in pairs:
            has_first = baskets.map(lambda basket, p=first: p in basket)
            with_first += has_first.sum()
            together += baskets[has_first].map(lambda basket, p=second: p in basket).sum()
        return together / max(with_first, 1)

    rng = np.random.default_rng(0)
    random_pairs = rng.choice(tables.products["product_id"].to_numpy(), size=(len(bundles), 2))
    assert together_rate(bundles[:40]) > 3 * together_rate(random_pairs[:40])


def test_users_keep_stable_staples(synth_dir):
    """Most of a user's later baskets repeat products they bought before (staples)."""
    tables = load_tables(synth_dir)
    lines = tables.prior_lines.merge(tables.orders, on="order_id")
    late = lines[lines["order_number"] > 5]
    assert late["reordered"].mean() > 0.6


def test_order_rhythm_is_per_user(synth_dir):
    orders = load_tables(synth_dir).orders
    per_user = orders.groupby("user_id")["days_since_prior_order"].mean()
    assert per_user.std() > 3  # weekly shoppers and monthly shoppers both exist
    dow = orders["order_dow"].value_counts(normalize=True)
    assert pd.Index(range(7)).isin(dow.index).all()
    assert (
        dow[0] > dow[3] and dow[1] > dow[3]
    )  # Sunday and Monday busier than midweek, as in Instacart
