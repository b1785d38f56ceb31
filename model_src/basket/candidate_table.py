"""The candidates a run can train, in one table: the config's names and defaults, the CLI's
choices, the winner rule's order of simplicity, the neural nets' encoders and the retrain
DAG's training tasks all derive from it. Plain data, no imports: the CLI and DAG files read
it without loading torch or xgboost. How each is tuned is `basket.candidates`; the model
classes are in `basket.models`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One candidate: its name, how it is tuned, the DAG task that trains it, and for a neural
    net its order encoder."""

    name: str
    tuner: str  # a key of `basket.candidates.TUNERS`
    dag_task: str  # candidates with the same task train together in it
    encoder: str | None = None  # the neural order encoder ("cnn", "attention"); None: not neural

    @property
    def neural(self) -> bool:
        return self.encoder is not None


# Simplest first: among candidates within the noise of the best, the winner is the earliest.
TABLE = (
    Candidate("p_topfreq", "p_topfreq", "train_references"),
    Candidate("tifu_knn", "tifu_knn", "train_references"),
    Candidate("xgboost", "xgboost", "train_xgboost"),
    Candidate("cnngru", "neural", "train_cnngru", encoder="cnn"),
    Candidate("attentiongru", "neural", "train_attentiongru", encoder="attention"),
)
BY_NAME = {candidate.name: candidate for candidate in TABLE}
CANDIDATE_NAMES = tuple(BY_NAME)
SIMPLICITY = CANDIDATE_NAMES
NEURAL = tuple(c.name for c in TABLE if c.neural)
BASELINES = tuple(c.name for c in TABLE if not c.neural)
ENCODERS = {c.name: c.encoder for c in TABLE if c.neural}
# The simplest candidate: what `basket train` compares the neural nets against.
REFERENCE = TABLE[0].name


def training_tasks() -> dict[str, tuple[str, ...]]:
    """{retrain DAG task id: the candidates it trains}, in table order."""
    tasks: dict[str, tuple[str, ...]] = {}
    for candidate in TABLE:
        tasks[candidate.dag_task] = (*tasks.get(candidate.dag_task, ()), candidate.name)
    return tasks
