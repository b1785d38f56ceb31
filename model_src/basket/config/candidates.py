"""The candidates a run can train, in one table: the config's names and defaults, the CLI's
choices, the winner rule's order of simplicity, the neural nets' encoders and the retrain
DAG's training tasks and the registry of model kinds all derive from it. Plain data, the
model classes named, not imported: the CLI and DAG files read it without loading torch or
xgboost. Each entry names its tuner (in `basket.training.tuning`) and its model class (in
`basket.models`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One candidate: its name, its model class, the DAG task that trains it, how it is tuned,
    and for a neural net its order encoder."""

    name: str
    model: str  # "module:Class" of its Recommender, imported by name (`model_class`)
    dag_task: str  # candidates with the same task train together in it
    # "module:function" that tunes it on validation (`tuner_function`); the default builds the
    # model class on the vocabulary (`Class(vocab)`) and fits it once, its decoding chosen on
    # validation like every other's.
    tuner: str = "basket.training.tuning:tune_fit"
    encoder: str | None = None  # the neural order encoder ("cnn", "attention"); None: not neural
    # The candidates a blend fuses, as tuned for themselves (their tuning is shared in a process).
    components: tuple[str, ...] = ()

    @property
    def neural(self) -> bool:
        return self.encoder is not None

    def model_class(self) -> type:
        """The Recommender class `model` names, imported now (the table itself imports
        nothing, so the CLI and the DAG files read it without torch or xgboost)."""
        return _imported(self.model)

    def tuner_function(self) -> Callable:
        """The function `tuner` names, `(candidate, training set, run config) -> Tuned`."""
        return _imported(self.tuner)


def _imported(target: str):
    """The attribute a "module:name" string names, its module imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


NEURAL_MODEL = "basket.models.neural:NeuralRecommender"
TUNING = "basket.training.tuning"
# Simplest first: among candidates within the noise of the best, the winner is the earliest.
# Adding a candidate is one entry here plus its model class (tests/test_adding_a_candidate.py).
TABLE = (
    Candidate("p_topfreq", "basket.models.top_freq:PTopFreq", "train_references"),
    Candidate(
        "tifu_knn", "basket.models.tifu_knn:TifuKNN", "train_references", f"{TUNING}:tune_tifu_knn"
    ),
    Candidate(
        "xgboost", "basket.models.xgb:XGBoostRecommender", "train_xgboost", f"{TUNING}:tune_xgboost"
    ),
    # The ranker and TIFU-KNN fused by rank: trained in xgboost's task, after it, so the
    # process holds the tuned ranker (TIFU-KNN's settings are searched again there).
    Candidate(
        "blend",
        "basket.models.blend:BlendRecommender",
        "train_xgboost",
        f"{TUNING}:tune_blend",
        components=("xgboost", "tifu_knn"),
    ),
    Candidate("cnngru", NEURAL_MODEL, "train_cnngru", f"{TUNING}:tune_neural", encoder="cnn"),
    Candidate(
        "attentiongru",
        NEURAL_MODEL,
        "train_attentiongru",
        f"{TUNING}:tune_neural",
        encoder="attention",
    ),
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
