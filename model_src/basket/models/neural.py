"""CNNGRU / AttentionGRU as `Recommender`s: fitting, scoring, saving and loading without pickle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from basket.config.candidates import ENCODERS
from basket.config.run import PredictorConfig, TrainConfig
from basket.data.history import Histories
from basket.data.user_products import N_FEATURES
from basket.data.vocab import Vocabulary
from basket.io.atomic import atomic_dir
from basket.models.base import (
    ChunkedRecommender,
    TrainingSet,
    write_model_dir,
)
from basket.models.device import resolve_device
from basket.models.embed import write_embeddings
from basket.models.encoding import encode
from basket.models.model_meta import ModelMeta
from basket.models.modules import NextBasketNet
from basket.models.neural_training import (
    Validation,
    fit_net,
    kept_learning_rates,
    predict_batches,
    training_examples,
)

SCORE_BATCH = 512


@dataclass
class NeuralRecommender(ChunkedRecommender):
    """A trained NextBasketNet with its vocabulary and tuned decision threshold."""

    net: NextBasketNet
    vocab: Vocabulary
    threshold: float = 0.5
    pos_weight: float = 1.0
    decoding: str = "threshold"  # or "expected_f1"
    train: TrainConfig = field(default_factory=TrainConfig)
    epochs: list[dict] = field(default_factory=list)  # the log of the last fit with validation
    kind: ClassVar[str] = "neural"
    score_form: ClassVar[str] = "head_tail"  # see basket.models.scored

    @classmethod
    def build(
        cls,
        name: str,
        predictor: PredictorConfig,
        vocab: Vocabulary,
        pos_weight: float,
        train: TrainConfig,
        head: int | None = None,
    ) -> NeuralRecommender:
        """An untrained neural candidate `name` (its encoder from the candidate table) scoring
        `vocab`: its output layer holds the first `head` products (all when None), and the
        repeat gate alone scores a customer's products beyond them. To `fit`."""
        if name not in ENCODERS:
            raise ValueError(f"unknown network {name!r}; known: {sorted(ENCODERS)}")
        config = replace(predictor, encoder=ENCODERS[name])
        net = NextBasketNet(config, len(vocab) if head is None else head, N_FEATURES)
        return cls(net, vocab, pos_weight=pos_weight, train=train)

    @property
    def head(self) -> int:
        """Products in the network's output layer: the vocabulary's first `head`."""
        return self.net.n_products

    @property
    def name(self) -> str:
        return next(name for name, encoder in ENCODERS.items()
                    if encoder == self.net.config.encoder)  # fmt: skip

    def fit(self, data: TrainingSet) -> NeuralRecommender:
        """Train a fresh network (seeded, product vectors from the EV file) on cut points of
        `data.inputs`: early stopping on `data.valid_targets`, or, without them, the epochs
        and learning rates the last fit kept."""
        torch.set_num_threads(self.train.threads)
        torch.manual_seed(self.train.seed)
        config = self.net.config
        net = NextBasketNet(config, self.head, N_FEATURES)
        if data.embeddings is not None:
            # The EV file covers the output layer's products, a prefix of the vocabulary's.
            vectors = data.embeddings[: self.head]
            net.load_embeddings(torch.from_numpy(np.ascontiguousarray(vectors)))
        net.to(resolve_device(self.train.device))
        train = self.train
        source, cuts = data.for_examples(train.targets_per_user, train.max_examples, train.seed)
        examples = data.derived(
            (
                "neural examples",
                config.n_orders,
                config.max_products,
                cuts,
                source.inputs.n_users,
                self.head,
            ),
            lambda: training_examples(source.inputs, self.vocab, config, cuts, self.head),
        )
        desc = f"{self.name} pw={self.pos_weight:g}"
        if data.valid_targets is None:
            if not self.epochs:
                raise ValueError("a refit needs a first fit with validation baskets")
            rates = kept_learning_rates(self.epochs)
            self.net, _ = fit_net(
                net, examples, self.pos_weight, self.train, desc + " refit", learning_rates=rates
            )
            return self
        validation = data.derived(
            ("neural validation", config.n_orders, config.max_products, self.head),
            lambda: Validation.of(*data.validation(), self.vocab, config, self.head),
        )
        self.net, self.epochs = fit_net(
            net, examples, self.pos_weight, self.train, desc, validation=validation
        )
        return self

    @torch.inference_mode()
    def score_parts(self, histories: Histories):
        """((U, head) probabilities of the output layer's products, and (rows, vocabulary
        indices, probabilities) of the products each customer bought beyond it); see `score`."""
        config, head = self.net.config, self.head
        encoded = encode(histories, self.vocab, config.n_orders, config.max_products, head=head)
        out = np.empty((histories.n_users, head), dtype=np.float32)
        rows, items, values = [], [], []
        for part in predict_batches(self.net, encoded, SCORE_BATCH):
            out[part.users] = part.probabilities
            rows.append(part.users[part.tail_rows])
            items.append(part.tail_items)
            values.append(part.tail_probabilities)
        if not rows:
            return out, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return (
            out,
            np.concatenate(rows).astype(np.int64),
            np.concatenate(items).astype(np.int64),
            np.concatenate(values).astype(np.float32),
        )

    def score(self, histories: Histories) -> np.ndarray:
        """(U, V) float32 probabilities that each product is in each user's next basket: the
        network's for the output layer's products, the repeat gate's for products a customer
        bought beyond them, 0 for the others."""
        head, rows, items, values = self.score_parts(histories)
        out = np.zeros((histories.n_users, len(self.vocab)), dtype=np.float32)
        out[:, : self.head] = head
        out[rows, items] = values
        return out

    def to(self, device: str) -> NeuralRecommender:
        """Score on `device` ("auto", "cpu" or "cuda") from now on."""
        self.net.to(resolve_device(device))
        return self

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """Undo pos_weight's inflation of the odds (x pos_weight) for expected-F1 decoding."""
        return scores / (scores + self.pos_weight * (1.0 - scores))

    def save(self, model_dir: Path, extra: dict | None = None) -> Path:
        """model.json, vocab.parquet, embeddings.parquet and weights.pt (a plain state dict)."""
        meta = {
            "kind": self.kind,
            "name": self.name,
            "threshold": self.threshold,
            "pos_weight": self.pos_weight,
            "decoding": self.decoding,
            "config": asdict(self.net.config),
            "train": asdict(self.train),
            "epochs": self.epochs,
            "head": self.head,
            **(extra or {}),
        }
        with atomic_dir(model_dir) as staging:
            write_model_dir(staging, self.vocab, meta)
            vectors = self.net.products.weight.detach()[: self.head].numpy()
            write_embeddings(self.vocab.head(self.head), vectors, staging / "embeddings.parquet")
            torch.save(self.net.state_dict(), staging / "weights.pt")
        return Path(model_dir)

    @classmethod
    def load(cls, model_dir: Path) -> NeuralRecommender:
        """Rebuild from `save`'s files; weights load with weights_only=True."""
        model_dir = Path(model_dir)
        meta = ModelMeta.read(model_dir)
        vocab = Vocabulary.load(model_dir / "vocab.parquet")
        head = meta.get("head", len(vocab))
        net = NextBasketNet(PredictorConfig(**meta["config"]), head, N_FEATURES)
        weights = torch.load(model_dir / "weights.pt", weights_only=True, map_location="cpu")
        net.load_state_dict(weights)
        net.eval()
        return cls(
            net,
            vocab,
            threshold=meta.threshold,
            pos_weight=meta.get("pos_weight", 1.0),
            decoding=meta.decoding,
            train=TrainConfig(
                **{key: _plain(value) for key, value in meta.get("train", {}).items()}
            ),
            epochs=meta.get("epochs", []),
        )


def _plain(value):
    """JSON lists back to the tuples the frozen configs hold."""
    return tuple(value) if isinstance(value, list) else value
