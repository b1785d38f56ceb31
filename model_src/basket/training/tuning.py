"""The candidates a run can train, by name, and the one place each is tuned on validation.

    cnngru, attentiongru   NeuralRecommender: one fit per pos_weight, the best by validation
                           recall@k (ties: NDCG@k)
    xgboost                XGBoostRecommender: its levers and settings searched, early
                           stopping on the validation baskets (basket.training.ranker_search)
    blend                  BlendRecommender: the tuned xgboost and tifu_knn, their weight
                           chosen on the validation baskets
    tifu_knn               TifuKNN: the neighbour database is the inputs
    p_topfreq              PTopFreq: nothing to learn

`tune` fits a candidate on the tuning set (every order before each customer's
validation basket; the validation baskets to stop early on), then
`choose_decoding` picks its basket decoding, threshold or expected F1, by one
criterion: the basket F1 (samples average) on the validation baskets. A refit
(`refit_set`) then trains the tuned candidate again with the validation baskets
as labels too. Nothing here reads an evaluation basket.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from basket.config.candidates import TABLE, Candidate
from basket.config.run import RunConfig, TifuConfig
from basket.data.history import Histories, Targets
from basket.data.prepare import Prepared
from basket.data.vocab import neural_vocabulary
from basket.models.base import Recommender, TrainingSet, chunks, scored
from basket.models.blend import CONSTANTS as BLEND_CONSTANTS
from basket.models.blend import WEIGHTS as BLEND_WEIGHTS
from basket.models.blend import BlendRecommender, JointRanks, reach
from basket.models.metrics import basket_f1, per_user_ranking, ranking_metrics
from basket.models.neural import NeuralRecommender
from basket.models.ranking import sparse_top_k
from basket.models.scored import basket
from basket.models.tifu_knn import TifuKNN
from basket.training.ranker_search import lever, search_ranker
from basket.training.significance import paired_gain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuned:
    """A tuned candidate, and for the neural ones the pos_weight grid it was chosen from (one
    row per pos_weight) with every fit's epoch log."""

    model: Recommender
    grid: pd.DataFrame | None = None
    epochs: pd.DataFrame | None = None
    decodings: dict[str, float] | None = None  # basket F1 on validation of each decoding tried
    # What each lever gained on validation and whether the model uses it (`ranker_search.lever`)
    levers: tuple[dict, ...] = ()


def tuning_set(
    data: Prepared, embeddings: np.ndarray, valid_users: int = RunConfig.valid_users
) -> TrainingSet:
    """What candidates are tuned on: the inputs before each validation basket, and those baskets
    (at most `valid_users` customers' of them decide)."""
    splits = data.splits
    return TrainingSet(
        splits.valid_inputs,
        splits.valid_targets,
        data.vocab,
        data.products,
        embeddings,
        valid_users,
    )


def refit_set(data: Prepared, embeddings: np.ndarray) -> TrainingSet:
    """What tuned candidates are refit on: every order before each evaluation basket (so the
    validation baskets become labels), with no baskets to stop on."""
    return TrainingSet(data.splits.eval_inputs, None, data.vocab, data.products, embeddings)


def validation_ranking(model: Recommender, data: TrainingSet, k: int) -> dict[str, float]:
    """Top-k ranking metrics of `model` on the validation baskets of `data` (its sample)."""
    inputs, targets = data.validation()
    ranked = model.recommend(inputs, k).product_ids
    return ranking_metrics(ranked, targets.offsets, targets.product_ids, k)


def tune_neural(candidate: Candidate, data: TrainingSet, config: RunConfig) -> Tuned:
    """Fit `name` once per pos_weight of `config.train` and keep the best on validation. With
    more customers than `train.grid_users`, the grid runs on a sample of them and only the
    chosen pos_weight is fit on everyone (each fit within `train.max_examples`)."""
    name, k, train = candidate.name, config.train.k, config.train
    searched = data.sample(train.grid_users, train.seed) if len(train.pos_weights) > 1 else data
    head = len(neural_vocabulary(data.vocab, config.vocab))
    rows, epochs, models = [], [], {}
    for pos_weight in train.pos_weights:
        model = NeuralRecommender.build(name, config.predictor, data.vocab, pos_weight, train, head)
        model.fit(searched)
        kept = next(row for row in model.epochs if row["kept"])
        rows.append(
            {
                "pos_weight": pos_weight,
                **validation_ranking(model, searched, k),
                "customers": searched.inputs.n_users,
                "epochs_run": len(model.epochs),
                "kept_epoch": kept["epoch"],
                "seconds": sum(row["seconds"] for row in model.epochs),
            }
        )
        epochs += [{"pos_weight": pos_weight, **row} for row in model.epochs]
        models[pos_weight] = model
    grid = pd.DataFrame(rows)
    best = grid.sort_values([f"recall@{k}", f"ndcg@{k}"], ascending=False, kind="stable")
    best_weight = float(best["pos_weight"].iloc[0])
    grid["chosen"] = grid["pos_weight"] == best_weight
    model = models[best_weight]
    if searched is not data:
        log.info("%s: pos_weight %g chosen on %d customers; fitting it on the %d customers "
                 "(within train.max_examples)", name, best_weight, searched.inputs.n_users,
                 data.inputs.n_users)  # fmt: skip
        model = NeuralRecommender.build(
            name, config.predictor, data.vocab, best_weight, train, head
        )
        model.fit(data)
        epochs += [
            {"pos_weight": best_weight, "all_customers": True, **row} for row in model.epochs
        ]
    return Tuned(model, grid, pd.DataFrame(epochs))


def tune_xgboost(candidate: Candidate, data: TrainingSet, config: RunConfig) -> Tuned:
    """XGBoost with its levers and settings searched on the validation baskets
    (`search_ranker`), early stopping there; with neighbour features, TIFU-KNN's settings
    come from the same search as the tifu_knn candidate's. The search's table as the grid."""
    model, table, levers = search_ranker(data, config, lambda: searched_tifu(data, config)[0])
    return Tuned(model, grid=table, levers=tuple(levers))


def tune_tifu_knn(candidate: Candidate, data: TrainingSet, config: RunConfig) -> Tuned:
    """TIFU-KNN with the settings `search_tifu` chooses; its table as the grid."""
    best, table = searched_tifu(data, config)
    return Tuned(TifuKNN(data.vocab, best).fit(data), grid=table)


def tune_blend(candidate: Candidate, data: TrainingSet, config: RunConfig) -> Tuned:
    """The candidate's components, the ranker and TIFU-KNN, as tuned (`tuned_component`), blended with the
    weight and constant whose validation recall@k (ties: NDCG@k) is best; the grid holds
    every pair tried, with its paired gain over the better component alone."""
    k, (ranker_name, neighbours_name) = config.train.k, candidate.components
    ranker = tuned_component(ranker_name, data, config)
    blend = BlendRecommender(
        data.vocab, ranker.model, tuned_component(neighbours_name, data, config).model
    )
    inputs, targets = data.validation()
    # Scored once, in chunks of customers, keeping only what can reach any blend's top k.
    parts = [(start, blend.joint_ranks(part).within(reach(k))) for start, part in chunks(inputs)]
    joint = JointRanks(
        *(np.concatenate([getattr(p, name) + (start if name == "users" else 0)
                          for start, p in parts])
          for name in ("users", "items", "ranker", "neighbours"))
    )  # fmt: skip
    results = {}
    for weight in BLEND_WEIGHTS:
        for constant in BLEND_CONSTANTS:
            scores = joint.scores(weight, constant)
            index, _ = sparse_top_k(
                joint.users, joint.items, scores, inputs.n_users, len(data.vocab), k
            )
            ranked = data.vocab.product_ids[index]
            results[weight, constant] = per_user_ranking(
                ranked, targets.offsets, targets.product_ids, k
            )
    key, tie = f"recall@{k}", f"ndcg@{k}"
    means = {option: (m[key].mean(), m[tie].mean()) for option, m in results.items()}
    # Ties go to the first pair tried: the ranker alone (weight 0), then small weights.
    best = max(means, key=lambda option: means[option])
    blend.weight, blend.constant = best
    alone = max([(0.0, BLEND_CONSTANTS[0]), (1.0, BLEND_CONSTANTS[0])], key=means.get)
    rows = []
    for (weight, constant), metrics in results.items():
        gain, low, high = paired_gain(
            metrics[key], results[alone][key], config.confidence, config.bootstrap_samples
        )
        rows.append({
            "weight": weight, "constant": constant, "valid_recall": means[weight, constant][0],
            "valid_ndcg": means[weight, constant][1], "gain_over_best_alone": gain,
            "gain_low": low, "gain_high": high, "chosen": (weight, constant) == best,
        })  # fmt: skip
    alone_name = "the ranker" if alone[0] == 0 else "TIFU-KNN"
    log.info("blend: TIFU-KNN's weight %g, constant %g: valid recall@%d %.4f (%s alone %.4f)",
             *best, k, means[best][0], alone_name, means[alone][0])  # fmt: skip
    chosen = next(row for row in rows if row["chosen"])
    blended = lever(
        f"the blend with TIFU-KNN (its weight {best[0]:g}, constant {best[1]:g}; versus "
        f"{alone_name} alone)",
        {"gain": chosen["gain_over_best_alone"], "gain_low": chosen["gain_low"],
         "gain_high": chosen["gain_high"], "customers": inputs.n_users, "value": True},
        0.0 < best[0] < 1.0,
    )  # fmt: skip
    return Tuned(blend, grid=pd.DataFrame(rows), levers=(*ranker.levers, blended))


def tuned_component(name: str, data: TrainingSet, config: RunConfig) -> Tuned:
    """Candidate `name` tuned on `data` (its decoding aside), once per set and config: the
    blend reads the ranker and TIFU-KNN a run tunes as candidates of their own. A copy on
    every call: a candidate's refit changes its model in place."""
    tuned = data.derived(("tuned", name, config), lambda: CANDIDATES[name](data, config))
    return copy.deepcopy(tuned)


def searched_tifu(data: TrainingSet, config: RunConfig) -> tuple[TifuConfig, pd.DataFrame]:
    """`search_tifu`, once per set and config (the tifu_knn candidate and the ranker's
    neighbour features use the same settings)."""
    key = ("tifu search", config.tifu, config.tifu_grid, config.train.k)
    return data.derived(key, lambda: search_tifu(data, config))


def _short(setting: TifuConfig) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in asdict(setting).items())


def search_tifu(data: TrainingSet, config: RunConfig) -> tuple[TifuConfig, pd.DataFrame]:
    """TIFU-KNN's group size, decays, neighbours and alpha searched on the validation baskets
    (`config.tifu_grid`), one setting at a time from `config.tifu`: the best setting, and a
    table of every setting tried with its validation recall@k and NDCG@k."""
    grid, k = config.tifu_grid, config.train.k
    queries = data.sample(grid.users, grid.seed)
    tried: dict[TifuConfig, dict[str, float]] = {}

    started = time.perf_counter()

    def measure(setting: TifuConfig) -> tuple[float, float]:
        if setting not in tried:
            model = TifuKNN(data.vocab, setting).fit(data)  # every customer is a neighbour
            tried[setting] = validation_ranking(model, queries, k)
            log.info(
                "tifu search: setting %d (%s): valid recall@%d %.4f, %.0fs so far",
                len(tried), _short(setting), k, tried[setting][f"recall@{k}"],
                time.perf_counter() - started,
            )  # fmt: skip
        metrics = tried[setting]
        return metrics[f"recall@{k}"], metrics[f"ndcg@{k}"]

    best = config.tifu
    for _ in range(grid.passes):
        for name in ("group_size", "within_decay", "group_decay", "neighbours", "alpha"):
            options = [replace(best, **{name: value}) for value in getattr(grid, name)]
            best = max([best, *options], key=measure)
    table = pd.DataFrame([{**asdict(setting), **metrics} for setting, metrics in tried.items()])
    table["chosen"] = [setting == best for setting in tried]
    return best, table


def tune_fit(candidate: Candidate, data: TrainingSet, config: RunConfig) -> Tuned:
    """The candidate's model class on the vocabulary, fitted once (P-TopFreq: nothing to tune
    but its decoding)."""
    return Tuned(candidate.model_class()(data.vocab).fit(data))


CANDIDATES: dict[str, Callable[[TrainingSet, RunConfig], Tuned]] = {
    c.name: partial(c.tuner_function(), c) for c in TABLE
}


def tune(name: str, data: TrainingSet, config: RunConfig) -> Tuned:
    """Candidate `name` fitted on `data` with its decoding chosen on the validation baskets."""
    if name not in CANDIDATES:
        raise ValueError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES)}")
    tuned = tuned_component(name, data, config)
    decodings = choose_decoding(tuned.model, *data.validation(), config.basket_thresholds)
    return replace(tuned, decodings=decodings)


def _basket_f1(rows: np.ndarray, cols: np.ndarray, vocab, targets: Targets) -> float:
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(targets.user_ids)))])
    return basket_f1(offsets, vocab.product_ids[cols], targets.offsets, targets.product_ids)[
        "f1_samples"
    ]


@dataclass(frozen=True)
class Decoding:
    """A way to turn scores into a basket: products at or above `threshold`, or (`threshold`
    None) the expected-F1-optimal basket."""

    threshold: float | None = None

    @property
    def label(self) -> str:
        """How reports and model.json name it: "threshold=0.05" or "expected_f1"."""
        return "expected_f1" if self.threshold is None else f"threshold={self.threshold:g}"


def decoding_options(
    model: Recommender, inputs: Histories, targets: Targets, thresholds
) -> dict[Decoding, float]:
    """Basket F1 (samples average) on `targets` of each decoding: every threshold, expected F1.
    Each chunk of customers is scored once, in the model's own score form (no customers x
    catalogue matrix for the sparse ones), and read by every decoding."""
    options = [Decoding(t) for t in sorted({*thresholds, model.threshold})] + [Decoding()]
    none = np.zeros(0, np.int64)
    baskets = {option: ([none], [none]) for option in options}
    n_products = len(model.vocab)
    for start, part in chunks(inputs):
        part_scores = scored(model, part, model.score_form)
        for option in options:
            rows, cols = basket(part_scores, option.threshold, model.calibrated, n_products)
            baskets[option][0].append(rows + start)
            baskets[option][1].append(cols)
    return {
        option: _basket_f1(np.concatenate(rows), np.concatenate(cols), model.vocab, targets)
        for option, (rows, cols) in baskets.items()
    }


def choose_decoding(
    model: Recommender, inputs: Histories, targets: Targets, thresholds
) -> dict[str, float]:
    """Set `model`'s decoding to the best of `decoding_options`; returns each option's F1 by its
    label ("threshold=0.05", "expected_f1"), as model.json keeps them."""
    options = decoding_options(model, inputs, targets, thresholds)
    best = max(options, key=options.get)
    model.decoding = "expected_f1" if best.threshold is None else "threshold"
    if best.threshold is not None:
        model.threshold = float(best.threshold)
    return {decoding.label: f1 for decoding, f1 in options.items()}
