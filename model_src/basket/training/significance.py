"""How sure a comparison is: paired bootstrap intervals over customers, and the winner rule.

On a few hundred or thousand customers, candidates often differ by less than
the noise of which customers happen to be held out. Every candidate is scored
on the same customers, so the bootstrap resamples customers once and applies
the same resample to every candidate: intervals of each mean, and of each
paired difference, come from the same draws.

The winner rule: take the candidate with the best primary metric (ties: NDCG,
then name). Every candidate whose paired difference to it has a confidence
interval that reaches 0 is "within the noise" of the best; of those, the
simplest (first in `simplicity`: cheaper to train, to serve and to explain)
wins. A more complex candidate wins only when it is better beyond the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 64  # bootstrap samples drawn at a time: CHUNK x customers counts in memory


def bootstrap_means(values: np.ndarray, samples: int, seed: int = 0) -> np.ndarray:
    """(samples, C) means of `values` (C, U) over customers resampled with replacement; each
    draw resamples the same customers for every row, so row differences are paired."""
    n_rows, n_users = values.shape
    rng = np.random.default_rng(seed)
    out = np.empty((samples, n_rows))
    for start in range(0, samples, CHUNK):
        size = min(CHUNK, samples - start)
        draws = rng.integers(0, n_users, size=(size, n_users))
        keys = (np.arange(size)[:, None] * n_users + draws).ravel()
        counts = np.bincount(keys, minlength=size * n_users).reshape(size, n_users)
        out[start : start + size] = counts @ values.T / n_users
    return out


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central `confidence` percentile interval of bootstrap `samples`."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Significance:
    """Intervals per candidate and metric, the paired difference of each candidate to the
    winner, the best by the point estimate, and which candidates are within its noise."""

    intervals: dict[str, dict[str, tuple[float, float]]]
    to_winner: dict[str, dict[str, float | tuple[float, float]]]
    best: str
    within_noise: tuple[str, ...]
    winner: str
    runner_up: str | None
    confidence: float
    samples: int

    def explanation(self, primary: str) -> str:
        """One paragraph saying why the winner won."""
        level = f"{self.confidence:.0%}"
        if self.winner == self.best and len(self.within_noise) == 1:
            text = f"{self.best} has the best {primary}, better than every other candidate beyond the noise ({level} paired bootstrap over customers)."
        elif self.winner == self.best:
            rest = [n for n in self.within_noise if n != self.best]
            others = ", ".join(rest) + (" are" if len(rest) > 1 else " is")
            text = f"{self.best} has the best {primary}; {others} within the noise ({level} paired bootstrap over customers) but no simpler, so {self.best} wins."
        else:
            others = ", ".join(n for n in self.within_noise if n != self.winner)
            text = f"{self.best} has the best {primary}, but {self.winner} is within the noise of it ({level} paired bootstrap over customers) and simpler, so {self.winner} wins (within the noise too: {others})."
        if self.runner_up is not None:
            gap = self.to_winner[self.runner_up]
            low, high = gap["interval"]
            text += f" Runner-up {self.runner_up}: {primary} {gap['difference']:+.4f} against the winner (interval {low:+.4f} to {high:+.4f})."
        return text


def significance(
    per_user: dict[str, dict[str, np.ndarray]],
    primary: str,
    tie_break: str,
    simplicity: tuple[str, ...],
    confidence: float = 0.95,
    samples: int = 1000,
    seed: int = 0,
) -> Significance:
    """Bootstrap every metric of `per_user` (candidate -> metric -> per-customer values, the same
    customers in the same order for every candidate) and pick the winner by the rule above."""
    names = sorted(per_user)
    metrics = sorted(per_user[names[0]])
    points = {name: {m: float(per_user[name][m].mean()) for m in metrics} for name in names}
    # One bootstrap for every (metric, candidate) row: the same customer draws as one bootstrap
    # per metric (same seed), drawn once instead of once per metric.
    rows = np.stack([per_user[n][m] for m in metrics for n in names])
    drawn = bootstrap_means(rows, samples, seed)
    boots = {m: drawn[:, i * len(names) : (i + 1) * len(names)] for i, m in enumerate(metrics)}
    intervals = {
        name: {m: interval(boots[m][:, i], confidence) for m in metrics}
        for i, name in enumerate(names)
    }
    column = {name: i for i, name in enumerate(names)}
    best = sorted(names, key=lambda n: (-points[n][primary], -points[n][tie_break], n))[0]
    primary_boot = boots[primary]
    within = [
        name
        for name in names
        if interval(primary_boot[:, column[best]] - primary_boot[:, column[name]], confidence)[0]
        <= 0.0
    ]
    rank = {name: i for i, name in enumerate(simplicity)}
    winner = min(within, key=lambda n: (rank.get(n, len(rank)), -points[n][primary], n))
    to_winner = {
        name: {
            "difference": points[name][primary] - points[winner][primary],
            "interval": interval(
                primary_boot[:, column[name]] - primary_boot[:, column[winner]], confidence
            ),
        }
        for name in names
        if name != winner
    }
    others = sorted(to_winner, key=lambda n: (-points[n][primary], -points[n][tie_break], n))
    return Significance(
        intervals=intervals,
        to_winner=to_winner,
        best=best,
        within_noise=tuple(sorted(within, key=lambda n: rank.get(n, len(rank)))),
        winner=winner,
        runner_up=others[0] if others else None,
        confidence=confidence,
        samples=samples,
    )


def paired_gain(
    new: np.ndarray, old: np.ndarray, confidence: float = 0.95, samples: int = 1000
) -> tuple[float, float, float]:
    """(mean of `new - old`, its `confidence` paired-bootstrap interval) over the same
    customers' per-customer values."""
    differences = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    low, high = interval(bootstrap_means(differences[None, :], samples)[:, 0], confidence)
    return float(differences.mean()), low, high
