"""Features of (customer, candidate product) pairs for the XGBoost ranker, built vectorised.

Candidates: every vocabulary product the customer bought before, plus the
`explore` most popular products they have not bought. Features (FEATURES):

- customer x product: own count, share of orders, recency, in last order,
  days since last purchase, days since / own mean interval (the cycle);
- repeat timing: share of the orders since the first purchase that held it,
  time-decayed shares of orders (decays `DECAYS` per order), days since the
  last purchase / the product's population repurchase interval;
- product: log popularity, reorder rate (share of purchases that repeat an
  earlier one by the same customer), repurchase propensity (share of its buyers
  who bought it again), log population repurchase interval (days), aisle and
  department ids;
- customer: orders, mean basket size, mean days between orders, reorder share;
- affinity: the customer's share of lines in the product's aisle and department;
- the order to predict: day of week, hour, days since prior;
- embeddings: cosine of the product's EV vector to the customer's last basket
  and to their whole history;
- transitions (when the model has them): the mean and the largest probability
  that the product follows a product of the customer's last basket in the next
  order (basket.models.transitions);
- neighbours (stacking TIFU-KNN, when the model has one): the customer's own
  time-decayed, grouped frequency of the product, and its mean frequency among
  the customer's most similar other customers;
- repurchase kernel (when the model has one): the product's learnt repurchase
  hazard at the days since the customer last bought it, and summed over every
  purchase of it (basket.models.repurchase).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from basket.data import schema as s
from basket.data.history import Histories, offsets_from_counts
from basket.data.user_products import DECAYS, OWN_FEATURES, user_product_stats
from basket.data.vocab import Vocabulary
from basket.models.repurchase import FEATURES as KERNEL_FEATURES
from basket.models.repurchase import RepurchaseKernel
from basket.models.tifu_knn import TifuKNN
from basket.models.transitions import FEATURES as TRANSITION_FEATURES
from basket.models.transitions import Transitions

FEATURES = (
    "up_log_count", "up_share", "up_recency", "up_in_last", "up_log_days_since", "up_cycle",
    "up_share_since_first", *(f"up_decayed_{round(d * 100)}" for d in DECAYS),
    "up_days_vs_p_interval",
    "p_log_popularity", "p_reorder_rate", "p_repurchase", "p_log_interval", "p_aisle",
    "p_department",
    "u_orders", "u_basket_mean", "u_days_mean", "u_reorder_share",
    "aisle_affinity", "department_affinity",
    "next_dow", "next_hour", "next_days_since",
    "emb_last_basket", "emb_history",
    *TRANSITION_FEATURES,
    "tifu_own", "tifu_neighbours",
    *KERNEL_FEATURES,
)  # fmt: skip
NEIGHBOUR_FEATURES = ("tifu_own", "tifu_neighbours")
# Without transitions, a TIFU-KNN model or a repurchase kernel.
BASE_FEATURES = FEATURES[
    : -len(NEIGHBOUR_FEATURES) - len(TRANSITION_FEATURES) - len(KERNEL_FEATURES)
]


def built_features(transitions: bool, neighbours: bool, kernel: bool = False) -> tuple[str, ...]:
    """The columns `candidate_features` builds, in order, with or without each optional block."""
    return (
        BASE_FEATURES
        + (TRANSITION_FEATURES if transitions else ())
        + (NEIGHBOUR_FEATURES if neighbours else ())
        + (KERNEL_FEATURES if kernel else ())
    )


@dataclass(frozen=True)
class ProductTable:
    """Per vocabulary product: popularity, reorder rate, repurchase propensity and interval,
    aisle, department, unit embedding."""

    log_popularity: np.ndarray
    reorder_rate: np.ndarray
    repurchase: np.ndarray  # share of the product's buyers who bought it in two orders or more
    interval: np.ndarray  # mean of its buyers' own repurchase intervals, days (0: none)
    aisle: np.ndarray
    department: np.ndarray
    embeddings: np.ndarray  # (V, E), rows L2-normalised

    @classmethod
    def build(
        cls, histories: Histories, vocab: Vocabulary, products: pd.DataFrame, embeddings: np.ndarray
    ):
        """Product statistics from `histories` (model inputs only) and the catalogue."""
        stats = user_product_stats(histories, vocab)
        purchases = np.bincount(stats.items, weights=stats.counts, minlength=len(vocab))
        repeats = np.bincount(stats.items, weights=stats.counts - 1, minlength=len(vocab))
        buyers = np.bincount(stats.items, minlength=len(vocab))
        repeaters = stats.counts > 1
        again = np.bincount(stats.items[repeaters], minlength=len(vocab))
        interval_sum = np.bincount(
            stats.items[repeaters], weights=stats.mean_interval[repeaters], minlength=len(vocab)
        )
        catalogue = products.set_index(s.PRODUCT_ID).reindex(vocab.product_ids)
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        return cls(
            log_popularity=np.log1p(purchases).astype(np.float32),
            reorder_rate=(repeats / np.maximum(purchases, 1)).astype(np.float32),
            repurchase=(again / np.maximum(buyers, 1)).astype(np.float32),
            interval=(interval_sum / np.maximum(again, 1)).astype(np.float32),
            aisle=catalogue[s.AISLE_ID].fillna(0).to_numpy(np.int32),
            department=catalogue[s.DEPARTMENT_ID].fillna(0).to_numpy(np.int32),
            embeddings=unit.astype(np.float32),
        )

    @cached_property
    def by_popularity(self) -> np.ndarray:
        """Vocabulary indices, most bought first (ties in vocabulary order): sorted once, not
        per request (a whole catalogue is tens of thousands of products)."""
        return np.argsort(-self.log_popularity, kind="stable")

    def frame(self, vocab: Vocabulary) -> pd.DataFrame:
        """As a table for saving (product_id first)."""
        out = pd.DataFrame(
            {
                "product_id": vocab.product_ids,
                "log_popularity": self.log_popularity,
                "reorder_rate": self.reorder_rate,
                "repurchase": self.repurchase,
                "interval": self.interval,
                "aisle": self.aisle,
                "department": self.department,
            }
        )
        return pd.concat([out, pd.DataFrame(self.embeddings).add_prefix("e")], axis=1)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ProductTable:
        """Inverse of `frame`."""
        embedding_columns = [c for c in frame.columns if c.startswith("e") and c[1:].isdigit()]
        return cls(
            frame["log_popularity"].to_numpy(np.float32),
            frame["reorder_rate"].to_numpy(np.float32),
            frame["repurchase"].to_numpy(np.float32),
            frame["interval"].to_numpy(np.float32),
            frame["aisle"].to_numpy(np.int32),
            frame["department"].to_numpy(np.int32),
            # Row-major: scipy copies a column-major right operand on every sparse product.
            np.ascontiguousarray(frame[embedding_columns].to_numpy(np.float32)),
        )


@dataclass(frozen=True)
class Candidates:
    """Rows of (user position, vocabulary index) with their feature matrix."""

    users: np.ndarray  # (R,)
    items: np.ndarray  # (R,)
    features: np.ndarray  # (R, len(FEATURES)) float32


def _share_by(
    user_of_line: np.ndarray, group_of_line: np.ndarray, n_users: int, n_groups: int
) -> np.ndarray:
    """(U, G) share of each user's lines falling in each group (aisle or department)."""
    counts = np.bincount(user_of_line * n_groups + group_of_line, minlength=n_users * n_groups)
    counts = counts.reshape(n_users, n_groups).astype(np.float32)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def _row_dots(
    left: np.ndarray, left_rows: np.ndarray, right: np.ndarray, right_rows: np.ndarray
) -> np.ndarray:
    """Dot products of left[left_rows[r]] and right[right_rows[r]] for every r, in chunks of
    1,024 rows whose gathered vectors stay in the core's cache (chunks of 262,144 rows took
    three times as long: each gather went out to memory and back)."""
    out = np.empty(len(left_rows), dtype=np.float32)
    for start in range(0, len(left_rows), 1 << 10):
        part = slice(start, start + (1 << 10))
        out[part] = np.einsum("re,re->r", left[left_rows[part]], right[right_rows[part]])
    return out


def _float32_columns(columns: list[np.ndarray]) -> np.ndarray:
    """`np.column_stack(columns).astype(np.float32)` without the float64 matrix in between:
    each column is cast once, into its place."""
    widths = [1 if column.ndim == 1 else column.shape[1] for column in columns]
    out = np.empty((len(columns[0]), sum(widths)), dtype=np.float32)
    start = 0
    for column, width in zip(columns, widths, strict=True):
        out[:, start : start + width] = column.reshape(len(column), width)
        start += width
    return out


def _counts_matrix(
    offsets: np.ndarray, items: np.ndarray, counts: np.ndarray, n_products: int
) -> sp.csr_matrix:
    """(users x products) line counts from per-user entries sorted by product, each product
    once: the canonical CSR form that scipy's COO conversion would build from the lines (same
    entries, same order, so the same sums bit for bit), without its cost (about 6 % of a lone
    request's features)."""
    return sp.csr_matrix(
        (counts.astype(np.float32), items, offsets), shape=(len(offsets) - 1, n_products)
    )


def candidate_features(
    histories: Histories,
    vocab: Vocabulary,
    products: ProductTable,
    explore: int,
    tifu: TifuKNN | None = None,
    transitions: Transitions | None = None,
    kernel: RepurchaseKernel | None = None,
) -> Candidates:
    """Candidates and features for every user of `histories`: the columns of
    `built_features(transitions is not None, tifu is not None, kernel is not None)`."""
    stats = user_product_stats(histories, vocab)
    n_users, n_products = histories.n_users, len(vocab)
    bought_user = np.repeat(np.arange(n_users), np.diff(stats.offsets))
    popular = products.by_popularity[:explore]
    explore_user = np.repeat(np.arange(n_users), len(popular))
    explore_item = np.tile(popular, n_users)
    # Which popular products each user already bought: a (users x explore) table, no set lookups.
    slot = np.full(n_products, -1)
    slot[popular] = np.arange(len(popular))
    in_popular = slot[stats.items] >= 0
    already = np.zeros((n_users, len(popular)), dtype=bool)
    already[bought_user[in_popular], slot[stats.items[in_popular]]] = True
    fresh = ~already.ravel()
    users = np.concatenate([bought_user, explore_user[fresh]])
    items = np.concatenate([stats.items, explore_item[fresh]]).astype(np.int64)
    own = np.zeros((len(users), OWN_FEATURES + len(DECAYS) + 2), dtype=np.float32)
    own[: len(bought_user)] = _repeat_features(stats, products)
    # By customer, then product: one int64 key, stable sort (a third of lexsort's time; the
    # pairs are unique, so the order is the same). Sorted before the other columns are built,
    # so only these are permuted.
    order = np.argsort(users.astype(np.int64) * n_products + items, kind="stable")
    users, items, own = users[order], items[order], own[order]

    # Customer-level features.
    sizes = histories.basket_sizes()
    order_user = histories.user_of_order()
    n_orders = histories.orders_per_user()
    basket_mean = np.bincount(order_user, weights=sizes, minlength=n_users) / np.maximum(
        n_orders, 1
    )
    gaps = np.nan_to_num(histories.days_since_prior.astype(np.float64), nan=0.0)
    days_mean = np.bincount(order_user, weights=gaps, minlength=n_users) / np.maximum(
        n_orders - 1, 1
    )
    lines_per_user = np.bincount(order_user, weights=sizes, minlength=n_users)
    repeat_lines = np.bincount(bought_user, weights=stats.counts - 1, minlength=n_users)
    reorder_share = repeat_lines / np.maximum(lines_per_user, 1)

    # Aisle and department affinity from all lines (in vocabulary).
    line_items = vocab.index_of(histories.product_ids)
    line_user = order_user[histories.order_of_line()]
    known = line_items >= 0
    n_aisles, n_departments = int(products.aisle.max()) + 1, int(products.department.max()) + 1
    aisle_share = _share_by(line_user[known], products.aisle[line_items[known]], n_users, n_aisles)
    department_share = _share_by(
        line_user[known], products.department[line_items[known]], n_users, n_departments
    )

    # Embedding similarity to the last basket and to the whole history.
    last_order = histories.order_offsets[1:] - 1
    in_last = known & (histories.order_of_line() == last_order[line_user])
    last_key, last_lines = np.unique(
        line_user[in_last].astype(np.int64) * n_products + line_items[in_last], return_counts=True
    )
    last_offsets = offsets_from_counts(np.bincount(last_key // n_products, minlength=n_users))
    # Sums of product vectors per user, as sparse (users x products) @ (products x dims).
    profile_last = (
        _counts_matrix(last_offsets, last_key % n_products, last_lines, n_products)
        @ products.embeddings
    )
    profile_all = (
        _counts_matrix(stats.offsets, stats.items, stats.counts, n_products) @ products.embeddings
    )
    for profile in (profile_last, profile_all):
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)

    features = _float32_columns(
        [
            own,
            products.log_popularity[items],
            products.reorder_rate[items],
            products.repurchase[items],
            np.log1p(products.interval[items]),
            products.aisle[items],
            products.department[items],
            n_orders[users],
            basket_mean[users],
            days_mean[users],
            reorder_share[users],
            aisle_share[users, products.aisle[items]],
            department_share[users, products.department[items]],
            histories.next_dow[users],
            histories.next_hour[users],
            histories.next_days_since_prior[users],
            _row_dots(products.embeddings, items, profile_last, users),
            _row_dots(products.embeddings, items, profile_all, users),
            transitions.features(histories, vocab, users, items)
            if transitions is not None
            else np.zeros((len(users), 0), dtype=np.float32),
            np.zeros((len(users), len(NEIGHBOUR_FEATURES) if tifu else 0), dtype=np.float32),
            kernel.features(histories, vocab, users, items)
            if kernel is not None
            else np.zeros((len(users), 0), dtype=np.float32),
        ]
    )
    if tifu is not None:
        start = (
            features.shape[1] - len(NEIGHBOUR_FEATURES) - (len(KERNEL_FEATURES) if kernel else 0)
        )
        features[:, start : start + len(NEIGHBOUR_FEATURES)] = _neighbour_features(
            histories, users, items, tifu
        )
    return Candidates(users, items, features)


def _repeat_features(stats, products: ProductTable) -> np.ndarray:
    """(S, OWN_FEATURES + len(DECAYS) + 2): the shared own features, then the repeat-timing
    ones (share since the first purchase, decayed shares, days since / product interval)."""
    n_orders = np.repeat(stats.n_orders, np.diff(stats.offsets)).astype(np.float64)
    since_first = stats.counts / (stats.orders_since_first + 1.0)
    # Each decayed count over its maximum (bought in every order): a share weighted to recent.
    decays = np.asarray(DECAYS)
    most = (1.0 - decays[None, :] ** n_orders[:, None]) / (1.0 - decays[None, :])
    interval = products.interval[stats.items]
    versus = np.where(interval > 0, stats.days_since / np.maximum(interval, 1.0), -1.0)
    return np.column_stack(
        [stats.features(), since_first, stats.decayed / most, np.minimum(versus, 10.0)]
    ).astype(np.float32)


def _neighbour_features(
    histories: Histories, users: np.ndarray, items: np.ndarray, tifu: TifuKNN
) -> np.ndarray:
    """(R, 2) TIFU-KNN's own and neighbour vectors at each (user, item) row; rows sorted by user."""
    out = np.empty((len(users), 2), dtype=np.float32)
    for rows, own, neighbours in tifu.parts(histories):
        first, last = np.searchsorted(users, [rows.start, rows.stop])
        local = users[first:last] - rows.start
        out[first:last, 0] = own[local, items[first:last]]
        out[first:last, 1] = neighbours[local, items[first:last]]
    return out


def labels(
    candidates: Candidates, targets_items: np.ndarray, targets_offsets: np.ndarray, n_products: int
) -> np.ndarray:
    """(R,) 1 where the candidate is in that user's target basket (vocabulary indices)."""
    owner = np.repeat(np.arange(len(targets_offsets) - 1), np.diff(targets_offsets))
    truth = owner.astype(np.int64) * n_products + targets_items
    return np.isin(candidates.users.astype(np.int64) * n_products + candidates.items, truth).astype(
        np.float32
    )
