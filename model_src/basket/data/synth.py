"""Synthetic Instacart-layout orders that behave like real grocery baskets.

What it plants (documented in docs/data.md, so a model can be checked for finding it):

- power-law product popularity (Zipf-like, exponent `popularity_exponent`);
- per-user staples: each user keeps a stable set of products, drawn by popularity
  and their own department tastes, and rebuys each on its repurchase cycle
  (aisle cycle x personal noise: milk ~weekly, detergent ~monthly); the chance
  of rebuying grows with the days since the last purchase of that product;
- exploration: the rest of each basket comes from global popularity, some of
  which the user has bought before (reorders, as in Instacart);
- bundles: products of complementary aisles (pasta + pasta sauce, chips + dips,
  cereal + milk, ...) are paired, and buying one adds its partner with
  probability `bundle_probability`; `synth_truth.json` lists the pairs;
- basket sizes with mean near 10 and a long tail (negative binomial per order
  around a per-user mean); order rhythm per user (days_since_prior_order, NaN on
  a first order, capped at 30 with the spike at 30 that the real data has); the
  day of week peaks on Sunday and Monday with a favourite day per user, hours
  peak mid-morning to afternoon around a per-user preferred hour;
- eval_set as in the Kaggle release: each user's last order is `train` (its lines
  in order_products__train) or `test` (no lines published); all others `prior`.

The generator is vectorised over users; it loops only over order positions
(at most `max_orders`). The same seed gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from basket.data import schema as s
from basket.data.aisles import COMPLEMENTARY_AISLES
from basket.data.catalogue import Catalogue, build_catalogue, max_products

INSTACART_PRODUCTS = 49_688
_DOW_SHAPE = np.array(
    [0.19, 0.17, 0.13, 0.12, 0.12, 0.13, 0.14]
)  # Instacart: Sunday, Monday busiest
_DOW_CDF = np.cumsum(_DOW_SHAPE)
_HOUR_PREFERENCE = np.array(
    [
        1,
        0.5,
        0.3,
        0.2,
        0.2,
        0.4,
        1.5,
        4,
        7,
        9,
        10,
        10,
        9.5,
        9.5,
        9.5,
        9,
        8,
        7,
        5.5,
        4,
        3,
        2.5,
        2,
        1.5,
    ]
)
_INTERVAL_DAYS = np.array([4, 6, 7, 7, 7, 9, 12, 14, 14, 18, 25, 30, 30])


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator; defaults give Instacart-like statistics."""

    users: int = 500
    seed: int = 0
    products: int | None = None  # None: users // 2, within [400, 49,688]
    orders_mean: float = 16.0  # mean orders per user, including the last (train/test) one
    min_orders: int = 4  # Instacart keeps users with 4..100 orders
    max_orders: int = 100
    basket_mean: float = 10.0  # mean items per order
    popularity_exponent: float = 1.05
    staples_per_basket_item: float = 1.1  # staples a user keeps, per item of their mean basket
    staple_propensity: float = 0.75  # chance a staple is rebought once its cycle has passed
    bundle_probability: float = 0.55
    train_share: float = (
        0.636  # share of users whose last order is `train` (Kaggle: 131,209 / 206,209)
    )

    def n_products(self) -> int:
        """The catalogue size this config asks for."""
        if self.products is not None:
            return self.products
        return int(np.clip(self.users // 2, 400, min(INSTACART_PRODUCTS, max_products())))


@dataclass(frozen=True)
class SynthTables:
    """Generated tables as Arrow tables, ready to write."""

    orders: pa.Table
    prior_lines: pa.Table
    train_lines: pa.Table
    products: pa.Table
    aisles: pa.Table
    departments: pa.Table
    bundles: np.ndarray  # (B, 2) product id pairs planted as bought together


def _popularity(rng: np.random.Generator, n_products: int, exponent: float) -> np.ndarray:
    """Zipf-like weights; catalogue order (plain names first) roughly sets the rank."""
    noisy_rank = np.argsort(np.argsort(np.arange(n_products) * rng.lognormal(0.0, 0.8, n_products)))
    weights = 1.0 / (noisy_rank + 3.0) ** exponent
    return weights / weights.sum()


def _bundles(rng: np.random.Generator, catalogue: Catalogue) -> np.ndarray:
    """Pairs (product_id, partner_id) across complementary aisles."""
    aisle_ids = {name: i + 1 for i, name in enumerate(catalogue.aisle_names)}
    pairs = []
    for first, second in COMPLEMENTARY_AISLES:
        left = np.flatnonzero(catalogue.product_aisle == aisle_ids[first])
        right = np.flatnonzero(catalogue.product_aisle == aisle_ids[second])
        if len(left) and len(right):
            pairs.append(np.stack([left, rng.choice(right, size=len(left))], axis=1) + 1)
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def _draw(rng: np.random.Generator, cdf: np.ndarray, size) -> np.ndarray:
    """Indices drawn from the distribution whose cumulative sum is `cdf` (inverse CDF)."""
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _staples(rng, n_users, popularity, product_department, n_departments, basket_mean, per_item):
    """Each user's staple products (padded with -1) and their count, by popularity x taste."""
    n_staples = np.clip(np.rint(basket_mean * per_item), 3, 48).astype(np.int64)
    width = int(n_staples.max())
    pool = _draw(rng, np.cumsum(popularity), (n_users, 3 * width))
    taste = rng.gamma(0.6, 1.0, (n_users, n_departments)) + 0.05
    score = np.log(taste[np.arange(n_users)[:, None], product_department[pool]]) + rng.gumbel(
        size=pool.shape
    )
    order = np.argsort(pool, axis=1, kind="stable")  # mark repeated draws within a user
    sorted_pool = np.take_along_axis(pool, order, axis=1)
    repeat = np.zeros_like(pool, dtype=bool)
    repeat[:, 1:] = sorted_pool[:, 1:] == sorted_pool[:, :-1]
    np.put_along_axis(
        score, order, np.where(repeat, -np.inf, np.take_along_axis(score, order, 1)), 1
    )
    best = np.argsort(-score, axis=1, kind="stable")[:, :width]
    staples = np.take_along_axis(pool, best, axis=1)
    valid = (np.arange(width)[None, :] < n_staples[:, None]) & np.isfinite(
        np.take_along_axis(score, best, axis=1)
    )
    return np.where(valid, staples, -1), valid


def generate(config: SynthConfig) -> SynthTables:
    """Generate all Instacart tables for `config` (deterministic for its seed)."""
    rng = np.random.default_rng(config.seed)
    catalogue = build_catalogue(config.n_products())
    n_users, n_products = config.users, len(catalogue.product_names)
    product_department = catalogue.aisle_department[catalogue.product_aisle - 1] - 1
    popularity = _popularity(rng, n_products, config.popularity_exponent)
    popularity_cdf = np.cumsum(popularity)
    bundles = _bundles(rng, catalogue)
    partner = np.full(n_products, -1)
    partner[bundles[:, 0] - 1] = bundles[:, 1] - 1

    # Users: number of orders, rhythm, basket size, hour preference, staples.
    extra = max(config.orders_mean - config.min_orders, 0.5)
    n_orders = config.min_orders + rng.negative_binomial(1.2, 1.2 / (1.2 + extra), n_users)
    n_orders = np.minimum(n_orders, config.max_orders)
    interval = rng.choice(_INTERVAL_DAYS, n_users) * rng.lognormal(0, 0.15, n_users)
    basket_mean = np.maximum(rng.lognormal(np.log(config.basket_mean) - 0.22, 0.45, n_users), 2.0)
    hour_pref = rng.choice(24, n_users, p=_HOUR_PREFERENCE / _HOUR_PREFERENCE.sum())
    staples, staple_valid = _staples(
        rng,
        n_users,
        popularity,
        product_department,
        len(catalogue.department_names),
        basket_mean,
        config.staples_per_basket_item,
    )
    cycle = catalogue.product_cycle_days[np.maximum(staples, 0)] * rng.lognormal(
        0, 0.3, staples.shape
    )
    propensity = np.clip(rng.beta(4, 2, staples.shape) * config.staple_propensity / 0.67, 0, 0.97)
    since_bought = (
        rng.uniform(0, 1, staples.shape) * cycle
    )  # days since each staple was last bought

    order_offsets = np.concatenate([[0], np.cumsum(n_orders)])
    total_orders = int(order_offsets[-1])
    days = np.full(total_orders, np.nan, dtype=np.float32)
    dow = np.zeros(total_orders, dtype=np.int8)
    hour = np.zeros(total_orders, dtype=np.int8)
    favourite_dow = rng.choice(7, n_users, p=_DOW_SHAPE)
    line_order, line_product, line_staple = [], [], []

    for position in range(int(n_orders.max())):
        active = np.flatnonzero(n_orders > position)
        order_index = order_offsets[active] + position
        if position > 0:
            gap = rng.gamma(3.0, interval[active] / 3.0)
            since_bought[active] += gap[:, None]
            days[order_index] = np.minimum(np.rint(gap), 30)
        # Half of a user's orders fall on their favourite day, the rest follow the weekly shape.
        on_favourite = rng.random(len(active)) < 0.5
        dow[order_index] = np.where(
            on_favourite, favourite_dow[active], _draw(rng, _DOW_CDF, len(active))
        )
        hour[order_index] = np.clip(
            hour_pref[active] + np.rint(rng.normal(0, 2, len(active))), 0, 23
        )

        # Staples come back as their cycle elapses.
        ready = np.minimum(since_bought[active] / cycle[active], 1.0) ** 1.5
        bought = staple_valid[active] & (rng.random(ready.shape) < propensity[active] * ready)
        since_bought[active] = np.where(bought, 0.0, since_bought[active])
        rows, cols = np.nonzero(bought)
        staple_orders = order_index[rows]
        staple_products = staples[active][rows, cols]

        # Exploration fills the basket up to its size, from global popularity.
        size = np.minimum(
            1 + rng.negative_binomial(2.0, 2.0 / (2.0 + basket_mean[active] - 1), len(active)), 120
        )
        n_explore = np.maximum(size - bought.sum(axis=1), 0)
        n_explore = np.maximum(n_explore, rng.binomial(2, 0.35, len(active)))
        explore_orders = np.repeat(order_index, n_explore)
        explore_products = _draw(rng, popularity_cdf, len(explore_orders))

        chosen_orders = np.concatenate([staple_orders, explore_orders])
        chosen_products = np.concatenate([staple_products, explore_products])
        with_partner = (partner[chosen_products] >= 0) & (
            rng.random(len(chosen_products)) < config.bundle_probability
        )
        line_order += [chosen_orders, chosen_orders[with_partner]]
        line_product += [chosen_products, partner[chosen_products[with_partner]]]
        line_staple += [
            np.arange(len(chosen_orders)) < len(staple_orders),
            np.zeros(int(with_partner.sum()), dtype=bool),
        ]

    return _assemble(
        rng, config, catalogue, n_orders, order_offsets, days, dow, hour,
        np.concatenate(line_order), np.concatenate(line_product), np.concatenate(line_staple),
        bundles,
    )  # fmt: skip


def _assemble(
    rng, config, catalogue, n_orders, order_offsets, days, dow, hour,
    line_order, line_product, line_staple, bundles,
) -> SynthTables:  # fmt: skip
    """Turn order and line arrays into the Instacart tables (ids, eval_set, cart order, reordered)."""
    n_users, total_orders = len(n_orders), int(order_offsets[-1])
    user_of_order = np.repeat(np.arange(n_users), n_orders)
    order_number = (np.arange(total_orders) - order_offsets[user_of_order] + 1).astype(np.int16)
    order_id = rng.permutation(total_orders).astype(np.int32) + 1
    is_last = order_number == n_orders[user_of_order]
    last_is_train = rng.random(n_users) < config.train_share
    eval_set = np.where(is_last, np.where(last_is_train[user_of_order], "train", "test"), "prior")

    # One line per (order, product); the cart puts staples first, as reorders come first in Instacart.
    key = line_order.astype(np.int64) * len(catalogue.product_names) + line_product
    key, first = np.unique(key, return_index=True)
    line_order, line_product, line_staple = (
        key // len(catalogue.product_names),
        key % len(catalogue.product_names),
        line_staple[first],
    )
    cart_key = rng.random(len(line_order)) + np.where(line_staple, 0.0, 0.6)
    by_cart = np.lexsort((cart_key, line_order))
    line_order, line_product = line_order[by_cart], line_product[by_cart]
    starts = np.searchsorted(line_order, line_order, side="left")
    add_to_cart = (np.arange(len(line_order)) - starts + 1).astype(np.int16)

    # reordered: the user bought this product in an earlier order.
    user_product = (
        user_of_order[line_order].astype(np.int64) * len(catalogue.product_names) + line_product
    )
    by_time = np.lexsort((line_order, user_product))
    seen_before = np.zeros(len(line_order), dtype=np.int8)
    seen_before[by_time[1:]] = user_product[by_time[1:]] == user_product[by_time[:-1]]

    lines = pa.table(
        {
            s.ORDER_ID: order_id[line_order],
            s.PRODUCT_ID: (line_product + 1).astype(np.int32),
            s.ADD_TO_CART: add_to_cart,
            s.REORDERED: seen_before,
        }
    )
    line_set = eval_set[line_order]
    prior_lines = lines.filter(pa.array(line_set == "prior"))
    train_lines = lines.filter(pa.array(line_set == "train"))
    prior_lines = prior_lines.sort_by([(s.ORDER_ID, "ascending"), (s.ADD_TO_CART, "ascending")])
    train_lines = train_lines.sort_by([(s.ORDER_ID, "ascending"), (s.ADD_TO_CART, "ascending")])

    orders = pa.table(
        {
            s.ORDER_ID: order_id,
            s.USER_ID: (user_of_order + 1).astype(np.int32),
            s.EVAL_SET: eval_set,
            s.ORDER_NUMBER: order_number,
            s.ORDER_DOW: dow,
            s.ORDER_HOUR: hour,
            s.DAYS_SINCE_PRIOR: pa.array(days, mask=np.isnan(days)),
        },
        schema=s.SCHEMAS[s.ORDERS],
    )
    n_products, n_aisles = len(catalogue.product_names), len(catalogue.aisle_names)
    products = pa.table(
        {
            s.PRODUCT_ID: np.arange(1, n_products + 1, dtype=np.int32),
            s.PRODUCT_NAME: catalogue.product_names.astype(str),
            s.AISLE_ID: catalogue.product_aisle.astype(np.int16),
            s.DEPARTMENT_ID: catalogue.aisle_department[catalogue.product_aisle - 1].astype(
                np.int16
            ),
        },
        schema=s.SCHEMAS[s.PRODUCTS],
    )
    aisles = pa.table(
        {
            s.AISLE_ID: np.arange(1, n_aisles + 1, dtype=np.int16),
            s.AISLE: catalogue.aisle_names.astype(str),
        }
    )
    departments = pa.table(
        {
            s.DEPARTMENT_ID: np.arange(1, len(catalogue.department_names) + 1, dtype=np.int16),
            s.DEPARTMENT: catalogue.department_names.astype(str),
        }
    )
    return SynthTables(orders, prior_lines, train_lines, products, aisles, departments, bundles)


def write_synthetic(config: SynthConfig, out_dir: Path | str) -> Path:
    """Generate data for `config` and write Instacart-layout CSVs (plus synth_truth.json) to `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = generate(config)
    for name in (s.ORDERS, s.PRIOR_LINES, s.TRAIN_LINES, s.PRODUCTS, s.AISLES, s.DEPARTMENTS):
        pacsv.write_csv(getattr(tables, _ATTRIBUTE[name]), out_dir / f"{name}.csv")
    truth = {"config": asdict(config), "bundles": tables.bundles.tolist()}
    (out_dir / "synth_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return out_dir


_ATTRIBUTE = {
    s.ORDERS: "orders",
    s.PRIOR_LINES: "prior_lines",
    s.TRAIN_LINES: "train_lines",
    s.PRODUCTS: "products",
    s.AISLES: "aisles",
    s.DEPARTMENTS: "departments",
}
