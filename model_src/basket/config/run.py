"""Typed run configuration: defaults from the design, overridable from a JSON/TOML file and the CLI.

Every setting of a training run lives here (the vocabulary's too;
serving's in `basket.config.serving`), so this module imports nothing heavy (no
torch, no xgboost): the CLI, the DAGs and the models all read it.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from basket.config.candidates import BASELINES, NEURAL

DEVICES = ("auto", "cpu", "cuda")  # where the neural nets train and score


@dataclass(frozen=True)
class VocabConfig:
    """How to choose the vocabulary: the `top_n` most bought products (None: every product
    bought) with at least `min_count` purchases; and the neural nets' share of it."""

    top_n: int | None = None  # the N most bought products at most; none: every product bought
    min_count: int = 1  # purchases a product needs to be in the vocabulary
    # The neural output layer and the EV file: the most bought products that hold this share of
    # the order lines, at most `neural_max` (their weights grow with it).
    neural_coverage: float = 0.95
    neural_max: int = 10_000  # products in the neural output layer and the EV file at most

    def __post_init__(self) -> None:
        if not 0.0 < self.neural_coverage <= 1.0:
            raise ValueError(f"vocab.neural_coverage must be in (0, 1], got {self.neural_coverage}")
        if self.neural_max < 1:
            raise ValueError(f"vocab.neural_max must be at least 1, got {self.neural_max}")


@dataclass(frozen=True)
class EmbedConfig:
    """Autoencoder settings; `dim` is the embedding width the predictors read."""

    dim: int = 64  # width of each product's vector in the EV file
    hidden: int = 256  # the autoencoder's hidden layer width
    epochs: int = 40  # autoencoder training epochs
    batch_size: int = 256  # products per autoencoder batch
    learning_rate: float = 2e-3  # Adam's learning rate for the autoencoder
    max_baskets: int = 300_000  # baskets sampled for co-purchase counts
    seed: int = 0  # random seed of the autoencoder (same seed, same vectors)


@dataclass(frozen=True)
class PredictorConfig:
    """Architecture of CNNGRU / AttentionGRU; defaults from the research plan."""

    encoder: str = "cnn"  # "cnn" (CNNGRU) or "attention" (AttentionGRU)
    n_orders: int = 5  # N_ORDERS: the customer's last orders the GRU reads
    max_products: int = 40  # products kept per order, in cart order (Instacart p99 is ~40)
    order_hidden: int = 128  # ORDER_HIDDEN: order vector and GRU width
    embed_dim: int = EmbedConfig.dim  # width of the EV file's vectors: equal to embed.dim
    attn_heads: int = 4  # attention heads of AttentionGRU's order encoder (ATTN_HEADS)
    n_layers: int = 2  # layers of the GRU over the orders (N_LAYERS)
    dropout: float = 0.1  # dropout between the GRU layers and before the head (DROPOUT)
    kernel_size: int = 3  # CNN window over neighbouring products in the cart
    fine_tune_embeddings: bool = True  # train the EV file's vectors further with the net
    repeat_gate: bool = True  # mix the customer's own purchase frequency into the logits
    gate_hidden: int = 64  # width of the repeat scorer


@dataclass(frozen=True)
class TifuConfig:
    """Defaults: the paper's Instacart setting, with fewer neighbours for small panels."""

    group_size: int = 3  # baskets per group, newest first
    within_decay: float = 0.9  # weight of each older basket inside a group (per basket)
    group_decay: float = 0.7  # weight of each older group (per group)
    neighbours: int = 300  # nearest customers (cosine) whose mean vector is mixed in
    alpha: float = 0.9  # share of the customer's own vector in the score (rest: neighbours)
    # Neighbours come from at most this many customers (a fixed random sample): the search is
    # exact, so its cost is customers x pool (docs: Models, "At scale").
    pool: int = 50_000


@dataclass(frozen=True)
class TifuGrid:
    """TIFU-KNN's settings searched on the validation baskets, one at a time from the defaults
    (two passes), scoring at most `users` customers against every customer's history. An
    empty tuple leaves that setting at TifuConfig's value."""

    group_size: tuple[int, ...] = (2, 3, 5, 7)  # group sizes tried
    within_decay: tuple[float, ...] = (0.6, 0.8, 0.9, 1.0)  # within-group decays tried
    group_decay: tuple[float, ...] = (0.5, 0.7, 0.9, 1.0)  # group decays tried
    neighbours: tuple[int, ...] = (50, 100, 300, 600)  # neighbour counts tried
    alpha: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)  # alphas tried
    passes: int = 2  # passes over the five settings (one at a time, from the best so far)
    users: int = 5000  # validation customers each setting is scored on (a fixed sample)
    seed: int = 0  # random seed of that sample


@dataclass(frozen=True)
class XGBConfig:
    """Candidate generation and booster settings."""

    explore: int = 20  # popular products added to every customer's candidates
    # Stack TIFU-KNN: its own and neighbour scores as features, with the TIFU settings the
    # search on validation chooses (the tifu_knn candidate's search); `ranker_search` tries
    # both values per run.
    neighbour_features: bool = False
    # Product-to-product transitions between consecutive orders as two features (the mean and
    # the largest P(candidate next | product of the last basket)); off: on Complete Journey's
    # validation baskets they added nothing.
    transition_features: bool = False
    transition_min_count: int = 2  # pairs of products seen fewer times are left out
    # The repurchase kernel's two features (basket.models.repurchase): each product's learnt
    # chance of coming back after so many days; `ranker_search` tries both values per run.
    repurchase_features: bool = False
    # A ranking objective ("rank:ndcg", "rank:pairwise"; one query per customer and cut point,
    # scores the logistic of the margin) or "binary:logistic" (probabilities). rank:ndcg won
    # on Complete Journey's validation baskets.
    objective: str = "rank:ndcg"
    # How a ranking objective builds its pairs: "topk" (each of the `ranking_pairs` best-ranked
    # candidates of a query against the rest) or "mean" (`ranking_pairs` random pairs per
    # candidate). XGBoost's defaults: topk, 32.
    ranking_pair_method: str = "topk"
    ranking_pairs: int = 32  # see ranking_pair_method
    # Weigh each customer's query by IDCG@10 / target basket size under a ranking objective, so
    # the objective counts a hit as recall@10 does (1 / basket size) and not as NDCG@10; off:
    # on Complete Journey its validation gain was within the noise, and NDCG@10 lower.
    recall_weights: bool = False
    # Feature columns left out (names from basket.models.xgb_features.FEATURES): for ablations.
    drop_features: tuple[str, ...] = ()
    targets_per_user: int = 3  # cut points per customer for training rows
    # Customer cut points (each ~ its candidates' rows) at most: fewer cut points per customer,
    # then a sample of customers, as the neural max_examples; chosen so that the Instacart-scale
    # retrain fits its nightly budget on 2 cores (bench/bench_retrain_scale.py). Complete
    # Journey's 2,370 households give 7,110, under it.
    max_examples: int = 30_000
    rounds: int = 400  # boosting rounds at most (early stopping ends sooner)
    early_stopping_rounds: int = 25  # rounds without a validation gain before stopping
    max_depth: int = 6  # depth of each tree
    learning_rate: float = 0.1  # shrinkage (eta) of each tree
    subsample: float = 0.9  # share of rows each tree sees
    colsample_bytree: float = 0.9  # share of feature columns each tree sees
    min_child_weight: float = 5.0  # least hessian weight in a leaf
    seed: int = 0  # random seed of sampling and of the booster
    threads: int = 2  # XGBoost threads


@dataclass(frozen=True)
class RankerSearch:
    """XGBoost's levers and settings chosen on each run's validation baskets: one at a time
    from XGBConfig's values, the levers first, each value tried as one fit (early stopping
    included) on at most `users` customers, kept only where its validation recall@k (ties:
    NDCG@k) beats the best so far. No new fit starts once `seconds` have passed. An empty
    tuple leaves that setting at XGBConfig's value; `seconds` 0 searches nothing."""

    neighbour_features: tuple[bool, ...] = (False, True)  # TIFU-KNN stacked as two features
    repurchase_features: tuple[bool, ...] = (False, True)  # the repurchase kernel's features
    max_depth: tuple[int, ...] = (4, 6, 8)  # tree depths tried
    learning_rate: tuple[float, ...] = (0.05, 0.1, 0.2)  # learning rates tried
    min_child_weight: tuple[float, ...] = (1.0, 5.0, 20.0)  # least hessian per leaf, tried
    targets_per_user: tuple[int, ...] = (2, 3, 5)  # cut points per customer tried
    explore: tuple[int, ...] = (10, 20, 50)  # candidate pools tried (popular products added)
    users: int = 5_000  # customers each setting is fitted and scored on (a fixed sample)
    # The search's time budget: at Instacart scale it must leave the nightly retrain in budget.
    seconds: float = 240.0
    seed: int = 0  # random seed of the customers' sample


@dataclass(frozen=True)
class TrainConfig:
    """How the neural predictors are trained and tuned; defaults from the research plan."""

    batch_size: int = 64  # training examples per batch (the first design said 16: docs, Models)
    epochs: int = 3  # passes over the training examples at most (early stopping ends sooner)
    learning_rate: float = 1e-3  # AdamW's learning rate for the neural nets
    weight_decay: float = 1e-4  # AdamW, decoupled
    grad_clip: float = 1.0  # max gradient norm
    patience: int = 2  # epochs without a validation gain before stopping early
    targets_per_user: int = 5  # cut points per user: more training examples from one history
    # BCE pos_weight grid: one fit each, the best by validation recall@k.
    pos_weights: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    # Training examples per epoch at most: with many customers, fewer cut points per customer
    # (down to each one's newest basket), then a sample of customers (docs: Models, "At scale");
    # chosen so that the Instacart-scale retrain fits its nightly budget on 2 cores
    # (bench/bench_retrain_scale.py). Complete Journey's 2,370 households give 11,850, under it.
    max_examples: int = 40_000
    # The pos_weight grid runs on at most this many customers; the chosen one is then fit on all.
    grid_users: int = 3_000
    k: int = 10  # the run's one k: top-k answers and every metric (recall@k, NDCG@k)
    seed: int = 0  # random seed of sampling, initial weights and batches
    threads: int = 2  # torch CPU threads
    device: str = "auto"  # the neural nets' torch device: auto (CUDA when present), cpu, cuda


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on; saved beside its outputs."""

    # The neural candidates a retrain trains (basket.config.candidates).
    models: tuple[str, ...] = NEURAL
    vocab: VocabConfig = field(default_factory=VocabConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    xgboost: XGBConfig = field(default_factory=XGBConfig)
    ranker_search: RankerSearch = field(default_factory=RankerSearch)
    tifu: TifuConfig = field(default_factory=TifuConfig)
    tifu_grid: TifuGrid = field(default_factory=TifuGrid)
    # The other candidates a retrain trains (basket.config.candidates).
    baselines: tuple[str, ...] = BASELINES
    # The metric the winner is chosen by, at the run's one k (`train.k`): "recall" -> recall@10.
    primary_metric: str = "recall"
    # The winner is the simplest candidate whose paired difference to the best primary metric
    # has a `confidence` bootstrap interval (over customers) that reaches 0.
    confidence: float = 0.95
    bootstrap_samples: int = 1000  # bootstrap resamples of customers for every interval
    # After tuning, refit each candidate with one more basket per customer as labels (the
    # validation basket), with the epochs/rounds tuning kept; the refit is what ships.
    refit: bool = True
    # Validation baskets of at most this many customers (a fixed random sample) decide early
    # stopping, the grids and the decoding: scoring 200,000 customers at once is 8 GB.
    valid_users: int = 20_000
    # "What the refit gained" scores the tuned and the refit candidates on at most this many
    # held-out customers (a fixed sample); the comparison itself uses every customer.
    refit_gain_users: int = 20_000
    # The comparison scores the held-out baskets of at most this many customers (a fixed random
    # sample; none: all): at 50,000 a recall's 95 % interval is about ±0.003, and scoring every
    # Instacart customer made the compare stage far longer.
    eval_users: int | None = 50_000
    # Basket thresholds tried on validation for every candidate (beside expected-F1 decoding);
    # the low end is for TIFU-KNN, whose scores are decayed frequencies, not probabilities.
    basket_thresholds: tuple[float, ...] = (0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)

    @property
    def primary_key(self) -> str:
        """The primary metric at the run's k, as metrics are keyed: "recall@10"."""
        name, _, at = self.primary_metric.partition("@")
        if at and at != str(self.train.k):
            raise ValueError(
                f"primary_metric {self.primary_metric!r} is at k={at} but train.k is "
                f"{self.train.k}: a run has one k; give the metric name alone ({name!r})"
            )
        return f"{name}@{self.train.k}"


def _merge(instance: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """A copy of dataclass `instance` with `overrides` applied (nested dicts for nested configs);
    ValueError naming the setting when one is unknown or its value of the wrong type."""
    known = {f.name: f for f in fields(instance)}
    hints = typing.get_type_hints(type(instance))
    changes = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(
                f"unknown setting {prefix + key!r} for {type(instance).__name__}; "
                f"known: {sorted(known)}"
            )
        current = getattr(instance, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(
                    f"setting {prefix + key} is a section: expected a table of settings, got {value!r}"
                )
            changes[key] = _merge(current, value, f"{prefix}{key}.")
        else:
            changes[key] = _typed(value, hints[key], prefix + key)
    return replace(instance, **changes)


def _typed(value: Any, hint: Any, path: str) -> Any:
    """`value` as setting `path` of type `hint` holds it (lists as tuples, ints as floats where
    a float is asked for); ValueError naming the setting when it is of another type."""
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (types.UnionType, typing.Union)
        else (hint,)
    )
    for option in options:
        if option is type(None) and value is None:
            return None
        if typing.get_origin(option) is tuple and isinstance(value, list | tuple):
            item = typing.get_args(option)[0]
            return tuple(_typed(v, item, path) for v in value)
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option in (int, str, bool) and type(value) is option:
            return value
    raise ValueError(f"setting {path}: expected {_type_name(hint)}, got {value!r}")


def _type_name(hint: Any) -> str:
    return " or ".join(
        "none" if option is type(None) else getattr(option, "__name__", str(option))
        for option in (
            typing.get_args(hint)
            if typing.get_origin(hint) in (types.UnionType, typing.Union)
            else (hint,)
        )
    )


def load_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults, then the file (JSON or TOML) at `path`, then `overrides`; the settings that
    must agree checked (`check_config`). ValueError names the file and the setting at fault."""
    config = RunConfig()
    if path is not None:
        path = Path(path)
        text = path.read_text()
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
            config = _merge(config, data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return check_config(_merge(config, overrides or {}))


def check_config(config: RunConfig) -> RunConfig:
    """`config` if its settings agree with each other, else ValueError naming them."""
    if config.predictor.embed_dim != config.embed.dim:
        raise ValueError(
            f"predictor.embed_dim is {config.predictor.embed_dim} but embed.dim is "
            f"{config.embed.dim}: the neural nets start from the EV file's vectors, so the two "
            f"widths must be equal; set both"
        )
    return config


def config_dict(config: RunConfig) -> dict[str, Any]:
    """The config as plain JSON-ready data."""
    return asdict(config)
