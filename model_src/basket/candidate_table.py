"""The candidates a run can train, in one table: the config's names and defaults, the CLI's
choices, the winner rule's order of simplicity, the neural nets' encoders and the retrain
DAG's training tasks and the registry of model kinds all derive from it. Plain data, the
model classes named, not imported: the CLI and DAG files read it without loading torch or
xgboost. How each is tuned is `basket.candidates`; the model classes are in `basket.models`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One candidate: its name, its model class, the DAG task that trains it, how it is tuned,
    and for a neural net its order encoder."""

    name: str
    model: str  # "module:Class" of its Recommender, imported by name (`model_class`)
    dag_task: str  # candidates with the same task train together in it
    # A key of `basket.candidates.TUNERS`; "fit": the model class built on the vocabulary
    # (`Class(vocab)`) and fitted once, its decoding chosen on validation like every other's.
    tuner: str = "fit"
    encoder: str | None = None  # the neural order encoder ("cnn", "attention"); None: not neural

    @property
    def neural(self) -> bool:
        return self.encoder is not None

    def model_class(self) -> type:
        """The Recommender class `model` names, imported now (the table itself imports
        nothing, so the CLI and the DAG files read it without torch or xgboost)."""
        module, _, name = self.model.partition(":")
        return getattr(importlib.import_module(module), name)


NEURAL_MODEL = "basket.models.neural:NeuralRecommender"
# Simplest first: among candidates within the noise of the best, the winner is the earliest.
# Adding a candidate is one entry here plus its model class (tests/test_adding_a_candidate.py).
TABLE = (
    Candidate("p_topfreq", "basket.models.top_freq:PTopFreq", "train_references"),
    Candidate("tifu_knn", "basket.models.tifu_knn:TifuKNN", "train_references", "tifu_knn"),
    Candidate("xgboost", "basket.models.xgb:XGBoostRecommender", "train_xgboost", "xgboost"),
    Candidate("cnngru", NEURAL_MODEL, "train_cnngru", "neural", encoder="cnn"),
    Candidate("attentiongru", NEURAL_MODEL, "train_attentiongru", "neural", encoder="attention"),
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
