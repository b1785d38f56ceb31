"""The neural training loop: examples from cut points, shuffled length-bucketed batches, BCE with
pos_weight, AdamW, gradient clipping, a plateau learning-rate schedule and early stopping.

`fit_net` trains one network. With validation baskets it keeps the best epoch's
checkpoint by validation recall@k, halves the learning rate after every epoch
without a gain and stops after `patience` of them; without (a refit) it replays
the learning rates of the epochs that fit kept. `NeuralRecommender.fit` calls
it; the pos_weight grid is in `basket.training.tuning`. Nothing here sees the
evaluation baskets.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from basket.config.run import TrainConfig
from basket.data.history import Histories, Targets, holdout_last
from basket.data.vocab import Vocabulary
from basket.models.device import module_device
from basket.models.encoding import Encoded, concat, encode
from basket.models.metrics import ranking_metrics
from basket.models.modules import NextBasketNet, PredictorConfig
from basket.models.ranking import top_k

log = logging.getLogger(__name__)


def training_examples(
    history: Histories,
    vocab: Vocabulary,
    config: PredictorConfig,
    cuts: int,
    head: int | None = None,
) -> Encoded:
    """Examples from `cuts` cut points per user: input = orders before a basket, target = that
    basket (its products among `vocab`'s first `head`, the network's output layer)."""
    parts = []
    for _ in range(cuts):
        history, targets = holdout_last(history)
        if history.n_users == 0:
            break
        parts.append(
            encode(history, vocab, config.n_orders, config.max_products, targets, head=head)
        )
    return concat(parts)


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, generator: torch.Generator
) -> list[np.ndarray]:
    """Shuffled batches of examples with similar longest orders, in shuffled order.

    Within windows of 50 batches, examples are sorted by length before cutting
    batches, so a batch rarely pads to the longest order of the whole data set;
    every example still appears exactly once per epoch.
    """
    order = torch.randperm(len(lengths), generator=generator).numpy()
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).numpy()
    return [batches[i] for i in shuffle]


def train_one_epoch(
    net: NextBasketNet,
    examples: Encoded,
    optimiser: torch.optim.Optimizer,
    loss_fn: nn.Module,
    config: TrainConfig,
    generator: torch.Generator,
    desc: str = "train",
) -> float:
    """One pass over `examples` in shuffled batches; returns the mean training loss."""
    net.train()
    device = module_device(net)
    batches = bucketed_batches(examples.longest_order(), config.batch_size, generator)
    total = 0.0
    bar = tqdm(batches, desc=desc, unit="batch", leave=False, mininterval=1.0, disable=None)
    for users in bar:
        logits = net(examples.batch(users).to(device))  # (B, V)
        loss = loss_fn(logits, examples.targets(users, net.n_products).to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimiser.step()
        total += loss.item() * len(users)
    return total / max(examples.n_users, 1)


@dataclass(frozen=True)
class Predicted:
    """One batch of `predict_batches`: the users (positions), the (B, V) probabilities of the
    output layer's products, and those of the products bought beyond it at (rows, items)."""

    users: np.ndarray
    probabilities: np.ndarray
    tail_rows: np.ndarray
    tail_items: np.ndarray
    tail_probabilities: np.ndarray


@torch.inference_mode()  # no autograd bookkeeping at all: answers are read, never trained on
def predict_batches(net: NextBasketNet, encoded: Encoded, batch_size: int = 512):
    """`Predicted` for batches of the users of `encoded`, in order: the one scoring loop of
    validation, the recommender and the tests."""
    if net.training:  # eval() walks every module: a serving request would pay it each time
        net.eval()
    device = module_device(net)
    for start in range(0, encoded.n_users, batch_size):
        users = np.arange(start, min(start + batch_size, encoded.n_users))
        batch = encoded.batch(users)
        logits, tail = net.forward_with_tail(batch.to(device))
        yield Predicted(
            users,
            torch.sigmoid(logits).cpu().numpy(),
            batch.tail_rows.numpy(),
            batch.tail_items.numpy(),
            torch.sigmoid(tail).cpu().numpy(),
        )


@dataclass(frozen=True)
class Validation:
    """The inputs (encoded) and the baskets that follow them, to stop early on."""

    encoded: Encoded
    targets: Targets
    vocab: Vocabulary

    @classmethod
    def of(
        cls,
        inputs: Histories,
        targets: Targets,
        vocab: Vocabulary,
        config: PredictorConfig,
        head: int | None = None,
    ):
        """Encode `inputs` for the network of `config` over `vocab`'s first `head` products."""
        encoded = encode(inputs, vocab, config.n_orders, config.max_products, head=head)
        return cls(encoded, targets, vocab)

    def ranking(self, net: NextBasketNet, k: int, chunk: int = 2048) -> dict[str, float]:
        """Top-k ranking metrics of `net` on these baskets (scored in chunks of customers: all
        20,000 at once would hold 0.8 GB of scores and 3 GB more to rank them)."""
        best = [
            top_k(part.probabilities, k)[0] for part in predict_batches(net, self.encoded, chunk)
        ]
        ranked = self.vocab.product_ids[np.concatenate(best)]
        return ranking_metrics(ranked, self.targets.offsets, self.targets.product_ids, k)


def fit_net(
    net: NextBasketNet,
    examples: Encoded,
    pos_weight: float,
    config: TrainConfig,
    desc: str,
    validation: Validation | None = None,
    learning_rates: list[float] | None = None,
) -> tuple[NextBasketNet, list[dict]]:
    """Train `net` on `examples`; returns the kept network and one log row per epoch.

    With `validation`: up to `config.epochs` epochs, the learning rate halved after each epoch
    without a recall@k gain (never below 5 % of the start), stopped after `config.patience` such
    epochs, the best epoch's weights kept (its row has "kept": True). Without: one epoch per
    entry of `learning_rates`, at that rate, and the last weights kept.
    """
    if validation is None and not learning_rates:
        raise ValueError("a fit without validation baskets needs the learning rates to replay")
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    # patience=0: the rate halves right after an epoch without a gain, so it acts before early
    # stopping (patience epochs without a gain) ends training. With patience=1 it never did.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="max", factor=0.5, patience=0, min_lr=config.learning_rate * 0.05
    )
    weights = torch.full((net.n_products,), float(pos_weight), device=module_device(net))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weights)
    planned = config.epochs if validation is not None else len(learning_rates)
    best, best_state, best_row, stale, epochs = -1.0, None, None, 0, []
    for epoch in range(1, planned + 1):
        if validation is None:
            for group in optimiser.param_groups:
                group["lr"] = learning_rates[epoch - 1]
        rate = optimiser.param_groups[0]["lr"]
        started = time.perf_counter()
        loss = train_one_epoch(
            net, examples, optimiser, loss_fn, config, generator, f"{desc} epoch {epoch}"
        )
        row = {
            "epoch": epoch,
            "lr": rate,
            "loss": loss,
            "examples": examples.n_users,
            "kept": False,
        }
        if validation is None:
            row["seconds"] = time.perf_counter() - started
            epochs.append(row)
            log.info("%s epoch %d (refit, lr %.2g): loss %.4f", desc, epoch, rate, loss)
            continue
        recall = validation.ranking(net, config.k)[f"recall@{config.k}"]
        scheduler.step(recall)
        row |= {f"valid_recall@{config.k}": recall, "seconds": time.perf_counter() - started}
        epochs.append(row)
        log.info(
            "%s epoch %d (lr %.2g): loss %.4f, valid recall@%d %.4f",
            desc, epoch, rate, loss, config.k, recall,
        )  # fmt: skip
        if recall > best:
            best, best_state, best_row, stale = recall, copy.deepcopy(net.state_dict()), row, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if validation is None:
        epochs[-1]["kept"] = True
    else:
        net.load_state_dict(best_state)
        best_row["kept"] = True
    return net, epochs


def kept_learning_rates(epochs: list[dict]) -> list[float]:
    """The learning rates of the epochs up to the kept one: what a refit replays."""
    kept = next(row["epoch"] for row in epochs if row["kept"])
    return [row["lr"] for row in epochs if row["epoch"] <= kept]
