"""Per-user order histories as ragged arrays, next-basket targets and leak-free splits.

A `Histories` holds, for every user, their known baskets in time order: flat
arrays with offsets (user -> orders -> lines), built with sorts and searches,
never a Python loop over users. Product ids stay raw; a model maps them to its
vocabulary with `Vocabulary.index_of`, so products outside it still count in the
truth, as misses.

Splits (`holdout_last`) take each user's last known basket as the target and
keep the orders before it as input, with the target order's day, hour and days
since prior as the context of the order to predict:

    full history ──holdout_last──► evaluation inputs + evaluation targets
    evaluation inputs ──holdout_last──► validation inputs + validation targets

so tuning on the validation split never sees an evaluation basket. With
Instacart's train labels the last known basket is the `train` order; without
them it is the last prior order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from basket.data import schema as s
from basket.data.load import Tables


@dataclass(frozen=True)
class Histories:
    """Users' baskets in time order, as flat arrays with offsets.

    Orders of user u are `order_offsets[u]:order_offsets[u + 1]`; the products of
    order o are `product_ids[line_offsets[o]:line_offsets[o + 1]]` in cart order.
    `next_*` describe the order to predict for each user (NaN/-1 when unknown).
    """

    user_ids: np.ndarray  # (U,) int32
    order_offsets: np.ndarray  # (U + 1,) int64
    order_ids: np.ndarray  # (O,) int32
    order_dow: np.ndarray  # (O,) int8
    order_hour: np.ndarray  # (O,) int8
    days_since_prior: np.ndarray  # (O,) float32, NaN on a first order
    line_offsets: np.ndarray  # (O + 1,) int64
    product_ids: np.ndarray  # (L,) int32
    next_dow: np.ndarray  # (U,) int8, -1 when unknown
    next_hour: np.ndarray  # (U,) int8, -1 when unknown
    next_days_since_prior: np.ndarray  # (U,) float32, NaN when unknown

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def orders_per_user(self) -> np.ndarray:
        """(U,) number of known orders of each user."""
        return np.diff(self.order_offsets)

    def basket_sizes(self) -> np.ndarray:
        """(O,) number of products in each order."""
        return np.diff(self.line_offsets)

    def user_of_order(self) -> np.ndarray:
        """(O,) user position of each order."""
        return np.repeat(np.arange(self.n_users), self.orders_per_user())

    def order_of_line(self) -> np.ndarray:
        """(L,) order position of each line."""
        return np.repeat(np.arange(len(self.order_ids)), self.basket_sizes())

    def bought(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's distinct purchased product ids, ragged: (offsets (U + 1,), product ids)."""
        user = self.user_of_order()[self.order_of_line()].astype(np.int64)
        stride = int(self.product_ids.max(initial=0)) + 1
        keys = np.unique(user * stride + self.product_ids)
        return offsets_from_counts(np.bincount(keys // stride, minlength=self.n_users)), (
            keys % stride
        ).astype(np.int32)

    def baskets(self, user: int) -> list[np.ndarray]:
        """One user's baskets (product ids), oldest first; for inspection and tests."""
        first, last = self.order_offsets[user], self.order_offsets[user + 1]
        return [
            self.product_ids[self.line_offsets[o] : self.line_offsets[o + 1]]
            for o in range(first, last)
        ]

    def select_users(self, keep: np.ndarray) -> Histories:
        """The histories of the users where `keep` (bool mask or positions) holds."""
        users = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        order_pos = index_ranges(self.order_offsets[users], self.order_offsets[users + 1])
        line_pos = index_ranges(self.line_offsets[order_pos], self.line_offsets[order_pos + 1])
        return Histories(
            user_ids=self.user_ids[users],
            order_offsets=offsets_from_counts(self.orders_per_user()[users]),
            order_ids=self.order_ids[order_pos],
            order_dow=self.order_dow[order_pos],
            order_hour=self.order_hour[order_pos],
            days_since_prior=self.days_since_prior[order_pos],
            line_offsets=offsets_from_counts(self.basket_sizes()[order_pos]),
            product_ids=self.product_ids[line_pos],
            next_dow=self.next_dow[users],
            next_hour=self.next_hour[users],
            next_days_since_prior=self.next_days_since_prior[users],
        )


@dataclass(frozen=True)
class Targets:
    """The basket to predict per user: raw product ids (vocabulary or not), with offsets."""

    user_ids: np.ndarray  # (U,) int32
    offsets: np.ndarray  # (U + 1,) int64
    product_ids: np.ndarray  # (T,) int32
    order_ids: np.ndarray  # (U,) int32

    def sizes(self) -> np.ndarray:
        """(U,) number of products in each target basket."""
        return np.diff(self.offsets)

    def select_users(self, positions: np.ndarray) -> Targets:
        """The targets of the users at `positions`, in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        lines = index_ranges(self.offsets[positions], self.offsets[positions + 1])
        return Targets(
            user_ids=self.user_ids[positions],
            offsets=offsets_from_counts(np.diff(self.offsets)[positions]),
            product_ids=self.product_ids[lines],
            order_ids=self.order_ids[positions],
        )

    def in_vocabulary(self, vocab) -> tuple[np.ndarray, np.ndarray]:
        """The target baskets as vocabulary indices, products outside `vocab` dropped:
        (offsets (U + 1,), indices)."""
        items = vocab.index_of(self.product_ids)
        known = items >= 0
        owner = np.repeat(np.arange(len(self.user_ids)), self.sizes())[known]
        return offsets_from_counts(np.bincount(owner, minlength=len(self.user_ids))), items[known]


def sample_positions(n_users: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of `size` of `n_users` customers drawn at random by `seed` (every
    position when `size` >= `n_users`): the fixed samples tuning and reports read."""
    if size >= n_users:
        return np.arange(n_users)
    return np.sort(np.random.default_rng(seed).choice(n_users, size=size, replace=False))


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    """(n + 1,) int64 offsets of n consecutive runs of `counts` items: 0, then the running sum."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])


def index_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, stop) for each pair, vectorised."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - offsets_from_counts(lengths)[:-1], lengths)
    return np.arange(total, dtype=np.int64) + shift


def build_histories(tables: Tables) -> Histories:
    """All known baskets per user from `tables` (prior orders, plus train orders when labelled).

    A user's `next_*` context comes from their `test` order when there is one.
    Orders without any line (e.g. `train` orders when the train file is absent)
    are not part of the history. Lines of unknown orders are ignored here;
    `basket.validation.validate` reports them.
    """
    orders = tables.orders
    lines = tables.prior_lines
    if tables.train_lines is not None:
        lines = pd.concat([lines, tables.train_lines], ignore_index=True)
    by_time = np.lexsort((orders[s.ORDER_NUMBER].to_numpy(), orders[s.USER_ID].to_numpy()))
    order_id = orders[s.ORDER_ID].to_numpy()[by_time]
    user_id = orders[s.USER_ID].to_numpy()[by_time]

    # Place each line in its order's time position, then keep orders that have lines.
    id_order = np.argsort(order_id, kind="stable")
    line_order_id = lines[s.ORDER_ID].to_numpy()
    slot = np.minimum(np.searchsorted(order_id[id_order], line_order_id), len(order_id) - 1)
    known = order_id[id_order][slot] == line_order_id
    line_pos = id_order[slot[known]]
    line_cart = lines[s.ADD_TO_CART].to_numpy()[known]
    line_product = lines[s.PRODUCT_ID].to_numpy()[known]
    line_sort = np.lexsort((line_cart, line_pos))
    line_pos, line_product = line_pos[line_sort], line_product[line_sort]

    lines_per_order = np.bincount(line_pos, minlength=len(order_id))
    has_lines = lines_per_order > 0
    kept_user = user_id[has_lines]
    user_ids, orders_per_user = np.unique(kept_user, return_counts=True)

    next_dow, next_hour, next_days = _next_order_context(orders, user_ids)
    return Histories(
        user_ids=user_ids.astype(np.int32),
        order_offsets=offsets_from_counts(orders_per_user),
        order_ids=order_id[has_lines].astype(np.int32),
        order_dow=orders[s.ORDER_DOW].to_numpy()[by_time][has_lines].astype(np.int8),
        order_hour=orders[s.ORDER_HOUR].to_numpy()[by_time][has_lines].astype(np.int8),
        days_since_prior=orders[s.DAYS_SINCE_PRIOR].to_numpy(np.float32)[by_time][has_lines],
        line_offsets=offsets_from_counts(lines_per_order[has_lines]),
        product_ids=line_product.astype(np.int32),
        next_dow=next_dow,
        next_hour=next_hour,
        next_days_since_prior=next_days,
    )


def _next_order_context(orders: pd.DataFrame, user_ids: np.ndarray):
    """(dow, hour, days_since_prior) of each user's `test` order; -1/-1/NaN where there is none."""
    test = orders[orders[s.EVAL_SET] == "test"]
    frame = pd.DataFrame({s.USER_ID: user_ids})
    frame = frame.merge(
        test[[s.USER_ID, s.ORDER_DOW, s.ORDER_HOUR, s.DAYS_SINCE_PRIOR]].drop_duplicates(s.USER_ID),
        on=s.USER_ID,
        how="left",
    )
    return (
        frame[s.ORDER_DOW].fillna(-1).to_numpy(np.int8),
        frame[s.ORDER_HOUR].fillna(-1).to_numpy(np.int8),
        frame[s.DAYS_SINCE_PRIOR].to_numpy(np.float32),
    )


def has_test_order(histories: Histories) -> np.ndarray:
    """(U,) whether each user has a `test` order to predict (its context is known)."""
    return histories.next_dow >= 0


def holdout_last(histories: Histories, min_input_orders: int = 1) -> tuple[Histories, Targets]:
    """Split off each user's last basket as the target; the orders before it are the input.

    Users with fewer than `min_input_orders + 1` known orders are dropped. The
    input's `next_*` context is the target order's own dow, hour and days since
    prior, which are known before that order's products are.
    """
    eligible = histories.select_users(histories.orders_per_user() >= min_input_orders + 1)
    last = eligible.order_offsets[1:] - 1
    target_lines = index_ranges(eligible.line_offsets[last], eligible.line_offsets[last + 1])
    targets = Targets(
        user_ids=eligible.user_ids,
        offsets=offsets_from_counts(eligible.basket_sizes()[last]),
        product_ids=eligible.product_ids[target_lines],
        order_ids=eligible.order_ids[last],
    )
    keep_order = np.ones(len(eligible.order_ids), dtype=bool)
    keep_order[last] = False
    keep_line = np.repeat(keep_order, eligible.basket_sizes())
    inputs = Histories(
        user_ids=eligible.user_ids,
        order_offsets=offsets_from_counts(eligible.orders_per_user() - 1),
        order_ids=eligible.order_ids[keep_order],
        order_dow=eligible.order_dow[keep_order],
        order_hour=eligible.order_hour[keep_order],
        days_since_prior=eligible.days_since_prior[keep_order],
        line_offsets=offsets_from_counts(eligible.basket_sizes()[keep_order]),
        product_ids=eligible.product_ids[keep_line],
        next_dow=eligible.order_dow[last],
        next_hour=eligible.order_hour[last],
        next_days_since_prior=eligible.days_since_prior[last],
    )
    return inputs, targets


def without_newest(histories: Histories, orders: int) -> Histories:
    """`histories` less each customer's `orders` newest orders (customers left with none drop
    out)."""
    for _ in range(orders):
        histories, _ = holdout_last(histories)
    return histories


@dataclass(frozen=True)
class Splits:
    """The one evaluation split every candidate is compared on, and the tuning split inside it."""

    eval_inputs: Histories
    eval_targets: Targets
    valid_inputs: Histories
    valid_targets: Targets


def make_splits(histories: Histories) -> Splits:
    """Evaluation = last known basket; validation = the one before, from the evaluation inputs only.

    Only users with enough orders for both splits (at least 3 known) take part,
    so validation and evaluation share the same users.
    """
    users = histories.select_users(histories.orders_per_user() >= 3)
    eval_inputs, eval_targets = holdout_last(users)
    valid_inputs, valid_targets = holdout_last(eval_inputs)
    return Splits(eval_inputs, eval_targets, valid_inputs, valid_targets)


def save_splits(splits: Splits, path) -> None:
    """Write `splits` as one .npz of plain arrays (no pickle), for the stages that come after."""
    arrays = {
        f"{part.name}.{f.name}": getattr(getattr(splits, part.name), f.name)
        for part in fields(Splits)
        for f in fields(getattr(splits, part.name))
    }
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_splits(path) -> Splits:
    """The `Splits` written by `save_splits`."""
    with np.load(path, allow_pickle=False) as arrays:
        parts = {}
        for part in fields(Splits):
            cls = Histories if part.name.endswith("inputs") else Targets
            parts[part.name] = cls(**{f.name: arrays[f"{part.name}.{f.name}"] for f in fields(cls)})
    return Splits(**parts)
