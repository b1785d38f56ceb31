"""The XGBoost candidate: a binary:logistic ranker over (customer, candidate product) rows.

Trained on examples from several cut points per customer (all before the
validation basket), with early stopping on the validation split; a refit
(no validation baskets) trains the number of rounds that early stopping kept. Saved in
XGBoost's UBJ format beside a product table; nothing is pickled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import xgboost as xgb

from basket.config.run import TifuConfig, XGBConfig
from basket.data.history import (
    Histories,
    Targets,
    holdout_last,
    sample_positions,
    without_newest,
)
from basket.data.vocab import Vocabulary
from basket.io.atomic import atomic_dir
from basket.models.base import (
    ChunkedRecommender,
    TrainingSet,
    write_model_dir,
)
from basket.models.model_meta import ModelMeta
from basket.models.repurchase import RepurchaseKernel
from basket.models.tifu_knn import TifuKNN
from basket.models.transitions import Transitions
from basket.models.xgb_features import (
    ProductTable,
    built_features,
    candidate_features,
    labels,
)

log = logging.getLogger(__name__)


class ProgressLog(xgb.callback.TrainingCallback):
    """One log line every `every` rounds: the validation metric, time so far, the most left."""

    def __init__(self, rounds: int, every: int = 50):
        super().__init__()
        self.rounds, self.every, self.started = rounds, every, time.perf_counter()

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        done = epoch + 1
        if done % self.every == 0 or done == self.rounds:
            seconds = time.perf_counter() - self.started
            metric = {
                name: values[-1] for data in evals_log.values() for name, values in data.items()
            }
            scores = ", ".join(f"valid {name} {value:.4f}" for name, value in metric.items())
            log.info(
                "xgboost round %d/%d: %s%.0fs, at most %.0fs left", done, self.rounds,
                f"{scores}, " if scores else "", seconds, seconds / done * (self.rounds - done),
            )  # fmt: skip
        return False


def recall_query_weights(users: np.ndarray, basket_sizes: np.ndarray, k: int = 10) -> np.ndarray:
    """One weight per query (each distinct customer of the sorted candidate rows `users`):
    IDCG@k of their target basket over its size. NDCG normalises a customer's pair gradients by
    IDCG@k, which stops growing at k products; recall@k counts a hit as 1 / basket size. The
    weight makes a hit in a large basket count as little as recall@k says."""
    sizes = basket_sizes[np.unique(users)]
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    return ideal[np.clip(sizes, 1, k) - 1] / np.maximum(sizes, 1)


@dataclass
class XGBoostRecommender(ChunkedRecommender):
    """Scores each customer's candidates with a boosted-tree model; other products score 0."""

    vocab: Vocabulary
    config: XGBConfig = field(default_factory=XGBConfig)
    products: ProductTable | None = None
    booster: xgb.Booster | None = None
    threshold: float = 0.2
    decoding: str = "threshold"  # or "expected_f1"
    # TIFU-KNN's settings for the neighbour features (stacking); None: no neighbour features.
    tifu_config: TifuConfig | None = None
    tifu: TifuKNN | None = None
    transitions: Transitions | None = None  # with config.transition_features
    kernel: RepurchaseKernel | None = None  # with config.repurchase_features
    kind: ClassVar[str] = "xgboost"
    score_form: ClassVar[str] = "sparse"  # see basket.models.scored

    def fit(self, data: TrainingSet) -> XGBoostRecommender:
        """Train on cut points of `data.inputs`: with validation baskets, stop early on them;
        without (a refit), train as many rounds as the last fit kept."""
        if data.products is None or data.embeddings is None:
            raise ValueError("XGBoost needs the catalogue and the EV file's vectors to train")
        self.products = ProductTable.build(data.inputs, self.vocab, data.products, data.embeddings)
        self.tifu = None if self.tifu_config is None else TifuKNN(self.vocab, self.tifu_config)
        if self.tifu is not None:
            self.tifu.fit(data)
        source, cuts = data.for_examples(
            self.config.targets_per_user, self.config.max_examples, self.config.seed
        )
        # Counted without the baskets the training rows predict: built over every order, the
        # matrix would hold each row's own (last basket -> target) pairs, and the booster
        # would learn to trust a feature that no unseen basket has (validation recall@10 on
        # Complete Journey fell from 0.182 to 0.161).
        self.transitions = (
            Transitions.build(without_newest(data.inputs, cuts), self.vocab,
                              self.config.transition_min_count, seed=self.config.seed)
            if self.config.transition_features
            else None
        )  # fmt: skip
        # Fitted without the baskets the training rows predict, as the transitions are.
        self.kernel = (
            RepurchaseKernel.build(without_newest(data.inputs, cuts), self.vocab)
            if self.config.repurchase_features
            else None
        )
        parts, history = [], source.inputs
        for _ in range(cuts):
            history, targets = holdout_last(history)
            if history.n_users == 0:
                break
            parts.append((self._candidates(history, self._neighbours_at(history)), targets))
        features = np.concatenate([c.features for c, _ in parts])
        y = np.concatenate([self._labels(c, t) for c, t in parts])
        # One query per (cut, customer) for the ranking objectives; rows are sorted by customer.
        qid = np.concatenate(
            [c.users + i * source.inputs.n_users for i, (c, _) in enumerate(parts)]
        )
        ranking = self.config.objective.startswith("rank:")
        train = xgb.DMatrix(
            features, label=y, feature_names=list(self.features), qid=qid if ranking else None
        )
        if ranking and self.config.recall_weights:
            train.set_weight(
                np.concatenate([recall_query_weights(c.users, t.sizes()) for c, t in parts])
            )
        params = {
            "objective": self.config.objective,
            "eval_metric": "ndcg@10" if ranking else "logloss",
            "max_depth": self.config.max_depth,
            "eta": self.config.learning_rate,
            "subsample": self.config.subsample,
            "colsample_bytree": self.config.colsample_bytree,
            "min_child_weight": self.config.min_child_weight,
            "seed": self.config.seed,
            "nthread": self.config.threads,
            "tree_method": "hist",
        }
        if ranking:
            params["lambdarank_pair_method"] = self.config.ranking_pair_method
            params["lambdarank_num_pair_per_sample"] = self.config.ranking_pairs
        if data.valid_targets is None:
            if self.booster is None:
                raise ValueError("a refit needs a first fit with validation baskets")
            rounds = self.booster.best_iteration + 1
            log.info("xgboost refit: %d rounds on %d rows", rounds, train.num_row())
            self.booster = xgb.train(
                params, train, num_boost_round=rounds, callbacks=[ProgressLog(rounds)]
            )
            self.booster.best_iteration = rounds - 1
            return self
        valid_inputs, valid_targets = data.validation()
        valid_candidates = self._candidates(valid_inputs)
        valid = xgb.DMatrix(
            valid_candidates.features,
            label=self._labels(valid_candidates, valid_targets),
            feature_names=list(self.features),
            qid=valid_candidates.users if ranking else None,
        )
        self.booster = xgb.train(
            params,
            train,
            num_boost_round=self.config.rounds,
            evals=[(valid, "valid")],
            early_stopping_rounds=self.config.early_stopping_rounds,
            verbose_eval=False,
            callbacks=[ProgressLog(self.config.rounds)],
        )
        return self

    @property
    def features(self) -> tuple[str, ...]:
        """The booster's columns, in order: the transition features only with transitions, the
        neighbour features only with a TIFU-KNN model, less the config's `drop_features`."""
        built = self._built
        return tuple(name for name in built if name not in self.config.drop_features)

    def _neighbours_at(self, cut: Histories) -> TifuKNN | None:
        """The neighbour model for the training rows of a cut point: TIFU-KNN over every
        customer's history as it stood at that cut (`cut`, at most `pool` customers of it).
        The fitted model's database holds each neighbour's later baskets, up to the same
        time as the rows' targets; built over it, the neighbour features were stronger on
        the training rows than any served customer's are, and the booster trusted them more
        than they deserve (docs: Models, "Levers")."""
        if self.tifu is None:
            return None
        pool = sample_positions(cut.n_users, self.tifu_config.pool, self.config.seed)
        return TifuKNN(self.vocab, self.tifu_config).fit_histories(cut.select_users(pool))

    def _candidates(self, histories: Histories, tifu: TifuKNN | None = None):
        """Candidate rows of `histories` with the booster's feature columns; the neighbour
        features from `tifu` (default: the fitted neighbour model)."""
        candidates = candidate_features(
            histories, self.vocab, self.products, self.config.explore, tifu or self.tifu,
            self.transitions, self.kernel,
        )  # fmt: skip
        if not self.config.drop_features:
            return candidates
        built = self._built
        unknown = set(self.config.drop_features) - set(built)
        if unknown:
            raise ValueError(f"xgboost.drop_features names unknown features {sorted(unknown)}; "
                             f"known: {list(built)}")  # fmt: skip
        keep = [built.index(name) for name in self.features]
        return replace(candidates, features=np.ascontiguousarray(candidates.features[:, keep]))

    @property
    def _built(self) -> tuple[str, ...]:
        """Every column `candidate_features` builds for this model."""
        return built_features(
            self.transitions is not None, self.tifu is not None, self.kernel is not None
        )

    def _labels(self, candidates, targets: Targets) -> np.ndarray:
        offsets, items = targets.in_vocabulary(self.vocab)
        return labels(candidates, items, offsets, len(self.vocab))

    def score_sparse(self, histories: Histories):
        """(users, vocabulary indices, scores, None) of every candidate (others score 0); see
        `score`."""
        candidates = self._candidates(histories)
        # In place: no DMatrix copy of the rows (a third of a small server batch's time).
        scores = self.booster.inplace_predict(
            candidates.features, iteration_range=(0, self.booster.best_iteration + 1)
        )
        if self.config.objective.startswith("rank:"):
            scores = 1.0 / (1.0 + np.exp(-scores.astype(np.float64)))
        return candidates.users, candidates.items, scores.astype(np.float32), None

    def limit_threads(self, threads: int) -> Self:
        """The booster predicts on `threads` threads (loaded, it would use every core: beside
        other server workers a small batch then waits for busy cores)."""
        self.booster.set_param({"nthread": threads})
        return self

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V) scores in (0, 1) for candidates, 0 for products that are not candidates:
        probabilities with `binary:logistic`; with a ranking objective the logistic of the
        booster's margin, ordered as the margin and above every non-candidate even where the
        margin is negative."""
        users, items, scores, _ = self.score_sparse(histories)
        out = np.zeros((histories.n_users, len(self.vocab)), dtype=np.float32)
        out[users, items] = scores
        return out

    def save(self, model_dir: Path, extra: dict | None = None) -> Path:
        """model.json, vocab.parquet, products.parquet, booster.ubj (XGBoost's own format) and,
        with neighbour features, the TIFU-KNN model in neighbours/; with transition features,
        transitions.npz; with the repurchase kernel's, repurchase.npz."""
        meta = {
            "kind": self.kind,
            "threshold": self.threshold,
            "decoding": self.decoding,
            "config": asdict(self.config),
            "best_iteration": self.booster.best_iteration,
            "features": list(self.features),
            "tifu_config": asdict(self.tifu_config) if self.tifu_config else None,
            **(extra or {}),
        }
        with atomic_dir(model_dir) as staging:
            write_model_dir(staging, self.vocab, meta)
            self.products.frame(self.vocab).to_parquet(staging / "products.parquet", index=False)
            self.booster.save_model(staging / "booster.ubj")
            if self.tifu is not None:
                self.tifu.save(staging / "neighbours")
            if self.transitions is not None:
                self.transitions.save(staging / "transitions.npz")
            if self.kernel is not None:
                self.kernel.save(staging / "repurchase.npz")
        return Path(model_dir)

    @classmethod
    def load(cls, model_dir: Path) -> XGBoostRecommender:
        """Read a model written by `save`."""
        model_dir = Path(model_dir)
        meta = ModelMeta.read(model_dir)
        booster = xgb.Booster()
        booster.load_model(model_dir / "booster.ubj")
        booster.best_iteration = meta["best_iteration"]
        tifu_config = meta.get("tifu_config")
        neighbours = model_dir / "neighbours"
        return cls(
            vocab=Vocabulary.load(model_dir / "vocab.parquet"),
            products=ProductTable.from_frame(pd.read_parquet(model_dir / "products.parquet")),
            config=XGBConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
            ),
            booster=booster,
            threshold=meta.threshold,
            decoding=meta.decoding,
            tifu_config=TifuConfig(**tifu_config) if tifu_config else None,
            tifu=TifuKNN.load(neighbours) if (neighbours / "model.json").is_file() else None,
            transitions=Transitions.load(model_dir / "transitions.npz")
            if (model_dir / "transitions.npz").is_file()
            else None,
            kernel=RepurchaseKernel.load(model_dir / "repurchase.npz")
            if (model_dir / "repurchase.npz").is_file()
            else None,
        )
