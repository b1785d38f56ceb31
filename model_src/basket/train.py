"""Train the neural predictors (CNNGRU, AttentionGRU) with a pos_weight x threshold grid search.

Flow per model: training examples (several cut points per user, all before the
validation target) -> for each pos_weight: fit with BCE + pos_weight, AdamW,
gradient clipping, a plateau LR scheduler and early stopping on validation
recall@k, keeping the best checkpoint -> evaluate every threshold on the
validation split. The pos_weight with the best validation recall@k (ties:
NDCG@k) wins; its threshold is the one with the best validation f1_micro, and
travels with the model (it decides the predicted basket; top-K ranks are
separate). Nothing here sees the evaluation baskets.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from basket.compare import evaluate_candidate
from basket.config import RunConfig, TrainConfig, config_dict
from basket.data.history import Histories, Targets, holdout_last
from basket.data.prepare import prepare
from basket.data.user_products import N_FEATURES
from basket.data.vocab import Vocabulary
from basket.embed import embed_products, read_embeddings
from basket.metrics import basket_f1, ranking_metrics, threshold_baskets
from basket.models.base import top_k
from basket.models.encoding import Encoded, concat, encode
from basket.models.modules import CNNGRU, AttentionGRU, NextBasketNet, PredictorConfig
from basket.models.neural import NeuralRecommender
from basket.models.top_freq import PTopFreq
from basket.plots import plot_grid

log = logging.getLogger(__name__)
BUILDERS = {"cnngru": CNNGRU, "attentiongru": AttentionGRU}


def training_examples(
    history: Histories, vocab: Vocabulary, config: PredictorConfig, cuts: int
) -> Encoded:
    """Examples from `cuts` cut points per user: input = orders before a basket, target = that basket."""
    parts = []
    for _ in range(cuts):
        history, targets = holdout_last(history)
        if history.n_users == 0:
            break
        parts.append(encode(history, vocab, config.n_orders, config.max_products, targets))
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
    batches = bucketed_batches(examples.longest_order(), config.batch_size, generator)
    total = 0.0
    bar = tqdm(batches, desc=desc, unit="batch", leave=False, mininterval=1.0, disable=None)
    for users in bar:
        logits = net(examples.batch(users))  # (B, V)
        loss = loss_fn(logits, examples.targets(users, net.n_products))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimiser.step()
        total += loss.item() * len(users)
    return total / max(examples.n_users, 1)


@torch.no_grad()
def predict(net: NextBasketNet, encoded: Encoded, batch_size: int = 512) -> np.ndarray:
    """(U, V) probabilities for every user of `encoded`."""
    net.eval()
    out = np.empty((encoded.n_users, net.n_products), dtype=np.float32)
    for start in range(0, encoded.n_users, batch_size):
        users = np.arange(start, min(start + batch_size, encoded.n_users))
        out[users] = torch.sigmoid(net(encoded.batch(users))).numpy()
    return out


def evaluate(
    probabilities: np.ndarray, vocab: Vocabulary, targets: Targets, k: int, thresholds
) -> list[dict]:
    """Validation metrics per threshold: top-k ranking metrics, the top-k list cut at the
    threshold (precision/recall), and the thresholded basket's F1."""
    index, scores = top_k(probabilities, k)
    ranked = vocab.product_ids[index]
    ranking = ranking_metrics(ranked, targets.offsets, targets.product_ids, k)
    rows = []
    for threshold in thresholds:
        keep = scores >= threshold
        cut = basket_f1(
            np.concatenate([[0], np.cumsum(keep.sum(axis=1))]),
            ranked[keep],
            targets.offsets,
            targets.product_ids,
        )
        basket = basket_f1(
            *threshold_baskets(probabilities, vocab.product_ids, threshold),
            targets.offsets,
            targets.product_ids,
        )
        rows.append(
            {
                "threshold": threshold,
                **ranking,
                f"precision@{k}_thresholded": cut["precision_samples"],
                f"recall@{k}_thresholded": cut["recall_samples"],
                "f1_micro": basket["f1_micro"],
                "f1_samples": basket["f1_samples"],
            }
        )
    return rows


def fit(
    net: NextBasketNet,
    examples: Encoded,
    valid: Encoded,
    valid_targets: Targets,
    vocab: Vocabulary,
    pos_weight: float,
    config: TrainConfig,
    desc: str,
) -> tuple[NextBasketNet, list[dict]]:
    """Train with early stopping on validation recall@k; returns the best checkpoint and the epoch log."""
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    # Halve the rate after two epochs without a validation gain, never below 5% of the start.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="max", factor=0.5, patience=1, min_lr=config.learning_rate * 0.05
    )
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.full((net.n_products,), float(pos_weight)))
    best, best_state, stale, epochs = -1.0, None, 0, []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        loss = train_one_epoch(
            net, examples, optimiser, loss_fn, config, generator, f"{desc} epoch {epoch}"
        )
        recall = ranking_metrics(
            vocab.product_ids[top_k(predict(net, valid), config.k)[0]],
            valid_targets.offsets,
            valid_targets.product_ids,
            config.k,
        )[f"recall@{config.k}"]
        scheduler.step(recall)
        epochs.append(
            {
                "epoch": epoch,
                "loss": loss,
                f"valid_recall@{config.k}": recall,
                "seconds": time.perf_counter() - started,
            }
        )
        log.info(
            "%s epoch %d: loss %.4f, valid recall@%d %.4f", desc, epoch, loss, config.k, recall
        )
        if recall > best:
            best, best_state, stale = recall, copy.deepcopy(net.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best_state)
    return net, epochs


@dataclass(frozen=True)
class GridResult:
    """The tuned model and the grid it was chosen from."""

    model: NeuralRecommender
    pos_weight: float
    table: pd.DataFrame
    epochs: dict[float, list[dict]]


def grid_search(
    name: str,
    predictor: PredictorConfig,
    config: TrainConfig,
    vocab: Vocabulary,
    embeddings: np.ndarray,
    train_history: Histories,
    valid_inputs: Histories,
    valid_targets: Targets,
) -> GridResult:
    """Fit `name` once per pos_weight, score each threshold on validation, keep the best."""
    torch.set_num_threads(config.threads)
    examples = training_examples(train_history, vocab, predictor, config.targets_per_user)
    valid = encode(valid_inputs, vocab, predictor.n_orders, predictor.max_products)
    rows, nets, epoch_logs = [], {}, {}
    for pos_weight in config.pos_weights:
        torch.manual_seed(config.seed)
        net = BUILDERS[name](predictor, len(vocab), N_FEATURES)
        net.load_embeddings(torch.from_numpy(embeddings))
        net, epoch_logs[pos_weight] = fit(
            net,
            examples,
            valid,
            valid_targets,
            vocab,
            pos_weight,
            config,
            f"{name} pw={pos_weight:g}",
        )
        probabilities = predict(net, valid)
        rows += [
            {"pos_weight": pos_weight, **row}
            for row in evaluate(probabilities, vocab, valid_targets, config.k, config.thresholds)
        ]
        nets[pos_weight] = net
    table = pd.DataFrame(rows)
    k = config.k
    per_weight = table.groupby("pos_weight")[[f"recall@{k}", f"ndcg@{k}"]].first()
    best_weight = per_weight.sort_values([f"recall@{k}", f"ndcg@{k}"], ascending=False).index[0]
    at_best = table[table["pos_weight"] == best_weight]
    threshold = float(at_best.sort_values("f1_micro", ascending=False)["threshold"].iloc[0])
    table["chosen"] = (table["pos_weight"] == best_weight) & (table["threshold"] == threshold)
    model = NeuralRecommender(nets[best_weight], vocab, threshold, pos_weight=float(best_weight))
    return GridResult(model, float(best_weight), table, epoch_logs)


@dataclass(frozen=True)
class TrainResult:
    """Where a training run wrote its models and report, and the held-out metrics."""

    run_dir: Path
    model_dirs: dict[str, Path]
    metrics: dict[str, dict[str, float]]


def model_version(name: str, fingerprint: str) -> str:
    """`name-YYYYmmddTHHMMSS-<data fingerprint prefix>`: unique per run, traceable to its data."""
    return f"{name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{fingerprint[:8]}"


def train_predictors(data_dir: Path | str, run_dir: Path | str, config=None) -> TrainResult:
    """The stage: data folder -> embeddings, tuned CNNGRU/AttentionGRU model dirs, grid tables and
    plots, and a held-out report beside P-TopFreq, all under `run_dir`."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    (run_dir / "grid").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = prepare(data_dir, config.vocab)
    splits, vocab, k = data.splits, data.vocab, config.train.k
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "config": config_dict(config),
                "data_dir": str(data_dir),
                "data_fingerprint": data.fingerprint,
            },
            indent=1,
        )
    )
    vocab.save(run_dir / "vocab.parquet")
    log.info("data: %d users, vocabulary of %d products", splits.eval_inputs.n_users, len(vocab))
    embeddings_path = embed_products(
        splits.eval_inputs, vocab, run_dir / "embeddings.parquet", config.embed
    )
    embeddings = read_embeddings(embeddings_path, vocab)

    holdout = (splits.eval_inputs, splits.eval_targets, k)
    metrics = {"p_topfreq": evaluate_candidate(PTopFreq(vocab), *holdout)[0]}
    model_dirs = {}
    for name in config.models:
        grid = grid_search(
            name, config.predictor, config.train, vocab, embeddings,
            splits.valid_inputs, splits.valid_inputs, splits.valid_targets,
        )  # fmt: skip
        grid.table.to_csv(run_dir / "grid" / f"{name}_grid.csv", index=False)
        plot_grid(grid.table, k, name, run_dir / "grid" / f"{name}_grid.png")
        metrics[name] = evaluate_candidate(grid.model, *holdout)[0]
        model_dirs[name] = grid.model.save(
            run_dir / "models" / name,
            extra={
                "version": model_version(name, data.fingerprint),
                "pos_weight": grid.pos_weight,
                "metrics": metrics[name],
                "data_fingerprint": data.fingerprint,
                "epochs": grid.epochs[grid.pos_weight],
                "train_config": config_dict(config)["train"],
            },
        )
    report = {"k": k, "seconds": time.perf_counter() - started, "candidates": metrics}
    (run_dir / "train_report.json").write_text(json.dumps(report, indent=1))
    return TrainResult(run_dir, model_dirs, metrics)
