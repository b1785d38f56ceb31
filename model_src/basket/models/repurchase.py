"""Repeat cycles in calendar time, per product: a repurchase kernel learnt from the histories.

For product p, the chance of buying it again t days after buying it is modelled as

    K_p(t) = a_p exp(-t / tau) + b_p exp(-(ln(1 + t) - ln(1 + mu_p))^2 / (2 s^2))

an exponential decay (right after a purchase, some products come back at once)
plus a bump at the product's typical interval `mu_p` (milk every week, coffee
every month). The mechanism behind TAIW (time-aware item weighting, RecSys
2023), fitted here in closed form:

1. every interval between two purchases of p by the same customer is an event,
   and each customer's time from their last purchase of p to their last order a
   censored interval; per bin of days, the events over the intervals still
   open give the product's hazard per day, shrunk towards every product's
   (`PRIOR` intervals' worth);
2. `mu_p` is the median of p's intervals (every product's median with fewer
   than `PRIOR` of them, weighted in); `tau` and `s` are shared, chosen from
   small grids by the weighted squared error over every product;
3. `a_p`, `b_p` >= 0 are each product's weighted least squares on its bins.

Two features per (customer, product) row (`FEATURES`): the kernel at the days
since the customer's last purchase of p (its hazard now) and, as TAIW weighs a
history, the kernel summed over every purchase of p by the customer. Days are
the orders' own gaps: where a source caps them (Instacart's 30), intervals
beyond the cap are too short and the bump of a monthly product is smeared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basket.data.history import Histories
from basket.data.user_products import timeline
from basket.data.vocab import Vocabulary

FEATURES = ("rk_hazard", "rk_history")
# Bins of days the hazard is counted in: each edge starts one; the last ends at LAST_END.
EDGES = np.array([0, 2, 4, 6, 8, 11, 15, 19, 24, 30, 37, 45, 60, 75, 90, 120, 150, 200, 270, 365])
LAST_END = 730.0
PRIOR = 20.0  # intervals' worth of every product's hazard and median mixed into each product's
TAUS = (2.0, 5.0, 10.0, 20.0)  # the decay's time constants tried, days
WIDTHS = (0.25, 0.4, 0.6, 0.9, 1.3)  # the bump's widths tried (s, in log days)


@dataclass(frozen=True)
class PurchaseLines:
    """Every in-vocabulary purchase: its (customer, product) entry and its day, sorted by
    entry then day; `keys` are customer * V + product."""

    keys: np.ndarray  # (L,) int64
    days: np.ndarray  # (L,) float64, days since the customer's first order

    @classmethod
    def of(cls, histories: Histories, vocab: Vocabulary) -> PurchaseLines:
        items = vocab.index_of(histories.product_ids)
        order_of_line = histories.order_of_line()
        user = histories.user_of_order()[order_of_line].astype(np.int64)
        elapsed, _ = timeline(histories)
        known = items >= 0
        keys = user[known] * len(vocab) + items[known]
        days = elapsed[order_of_line][known]
        order = np.lexsort((days, keys))
        return cls(keys[order], days[order])


@dataclass(frozen=True)
class RepurchaseKernel:
    """Per vocabulary product, the kernel's weights and typical interval; `tau` and `width`
    shared."""

    decay: np.ndarray  # (V,) a_p
    bump: np.ndarray  # (V,) b_p
    interval: np.ndarray  # (V,) mu_p, days
    tau: float
    width: float

    def __call__(self, items: np.ndarray, days: np.ndarray) -> np.ndarray:
        """K at `days` after a purchase of each of `items` (vocabulary indices)."""
        return _kernel(self.decay[items], self.bump[items], self.interval[items], days,
                       self.tau, self.width)  # fmt: skip

    @classmethod
    def build(cls, histories: Histories, vocab: Vocabulary) -> RepurchaseKernel:
        """Fitted on `histories` (model inputs only; see the module docstring)."""
        n_products = len(vocab)
        lines = PurchaseLines.of(histories, vocab)
        elapsed, _ = timeline(histories)
        end = elapsed[histories.order_offsets[1:] - 1]  # each customer's last known order
        same = np.flatnonzero(lines.keys[1:] == lines.keys[:-1])
        event_item = lines.keys[same + 1] % n_products
        event_days = lines.days[same + 1] - lines.days[same]
        last = np.flatnonzero(np.r_[lines.keys[1:] != lines.keys[:-1], len(lines.keys) > 0])
        censor_item = lines.keys[last] % n_products
        censor_days = end[lines.keys[last] // n_products] - lines.days[last]
        width, middle = np.diff(np.r_[EDGES, LAST_END]), (EDGES + np.r_[EDGES[1:], LAST_END]) / 2
        events = _binned(event_item, event_days, n_products)
        censored = _binned(censor_item, censor_days, n_products)
        # At risk in a bin: every interval at least as long as its start (censored ones half).
        at_risk = np.cumsum((events + censored)[:, ::-1], axis=1)[:, ::-1] - censored / 2
        pooled = events.sum(0) / np.maximum(at_risk.sum(0), 1e-9) / width
        hazard = (events + PRIOR * pooled * width) / ((at_risk + PRIOR) * width)
        weight = at_risk + PRIOR
        interval = _shrunk_medians(event_item, event_days, n_products)
        best = None
        for tau in TAUS:
            for s in WIDTHS:
                a, b, error = _least_squares(hazard, weight, middle, interval, tau, s)
                if best is None or error < best[-1]:
                    best = (a, b, tau, s, error)
        a, b, tau, s, _ = best
        return cls(a.astype(np.float32), b.astype(np.float32), interval.astype(np.float32),
                   float(tau), float(s))  # fmt: skip

    def features(
        self, histories: Histories, vocab: Vocabulary, users: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """(R, 2) `FEATURES` of rows (users, items) sorted by user then item; 0 where the
        customer never bought the product."""
        lines = PurchaseLines.of(histories, vocab)
        _, now = timeline(histories)
        n_products = len(vocab)
        owner = lines.keys // n_products
        weights = self(lines.keys % n_products, np.maximum(now[owner] - lines.days, 0.0))
        keys, first, inverse = np.unique(lines.keys, return_index=True, return_inverse=True)
        history = np.bincount(inverse, weights=weights, minlength=len(keys))
        newest = np.r_[first[1:], len(lines.keys)] - 1  # each entry's last purchase
        rows = users.astype(np.int64) * n_products + items
        at = np.minimum(np.searchsorted(keys, rows), max(len(keys) - 1, 0))
        bought = (keys[at] == rows) if len(keys) else np.zeros(len(rows), dtype=bool)
        out = np.zeros((len(rows), 2), dtype=np.float32)
        out[bought, 0] = weights[newest[at[bought]]]
        out[bought, 1] = history[at[bought]]
        return out

    def save(self, path: Path) -> Path:
        """One .npz file (no pickle)."""
        np.savez(path, decay=self.decay, bump=self.bump, interval=self.interval,
                 shape=np.array([self.tau, self.width]))  # fmt: skip
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> RepurchaseKernel:
        """The kernel `save` wrote."""
        with np.load(path, allow_pickle=False) as saved:
            tau, width = saved["shape"]
            return cls(saved["decay"], saved["bump"], saved["interval"], float(tau), float(width))


def _kernel(a, b, mu, days, tau: float, s: float) -> np.ndarray:
    log_gap = np.log1p(days) - np.log1p(mu)
    return a * np.exp(-days / tau) + b * np.exp(-(log_gap**2) / (2 * s * s))


def _binned(items: np.ndarray, days: np.ndarray, n_products: int) -> np.ndarray:
    """(V, bins) counts of intervals by product and bin of days."""
    bins = np.searchsorted(EDGES, days, side="right") - 1
    return (
        np.bincount(
            items * len(EDGES) + np.clip(bins, 0, len(EDGES) - 1), minlength=n_products * len(EDGES)
        )
        .reshape(n_products, len(EDGES))
        .astype(np.float64)
    )


def _shrunk_medians(items: np.ndarray, days: np.ndarray, n_products: int) -> np.ndarray:
    """(V,) each product's median interval, mixed with every product's by `PRIOR` intervals."""
    overall = float(np.median(days)) if len(days) else 7.0
    counts = np.bincount(items, minlength=n_products)
    order = np.lexsort((days, items))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    middle = starts + np.maximum(counts - 1, 0) // 2
    median = np.where(counts > 0, days[order][np.minimum(middle, max(len(days) - 1, 0))]
                      if len(days) else overall, overall)  # fmt: skip
    return (counts * median + PRIOR * overall) / (counts + PRIOR)


def _least_squares(hazard, weight, middle, interval, tau: float, s: float):
    """Per product, a, b >= 0 minimising sum_bins weight * (a e + b g - hazard)^2 (e the decay,
    g the bump at that product's interval); returns (a, b, total weighted error)."""
    e = np.broadcast_to(np.exp(-middle / tau), hazard.shape)
    g = np.exp(-((np.log1p(middle)[None, :] - np.log1p(interval)[:, None]) ** 2) / (2 * s * s))
    see, sgg, seg = (weight * e * e).sum(1), (weight * g * g).sum(1), (weight * e * g).sum(1)
    sey, sgy = (weight * e * hazard).sum(1), (weight * g * hazard).sum(1)
    det = np.maximum(see * sgg - seg * seg, 1e-18)
    a, b = (sgg * sey - seg * sgy) / det, (see * sgy - seg * sey) / det
    # Where one weight would be negative, the other term alone.
    only_a = np.maximum(sey / np.maximum(see, 1e-18), 0.0)
    only_b = np.maximum(sgy / np.maximum(sgg, 1e-18), 0.0)
    a, b = (
        np.where(b < 0, only_a, np.where(a < 0, 0.0, a)),
        np.where(b < 0, 0.0, np.where(a < 0, only_b, b)),
    )
    error = (weight * (a[:, None] * e + b[:, None] * g - hazard) ** 2).sum()
    return a, b, float(error)
