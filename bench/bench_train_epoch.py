"""Training-epoch benchmark at Instacart scale: CNNGRU and AttentionGRU, 206k users, 10k products.

Uses the synthetic Instacart-scale folder of bench_load.py (generated if
missing). For each model it times, in the same process and on the same
examples (one target basket per user, before the validation basket):

- baseline: a plain forward pass over every user (no gradients), the same batch size;
- one full training epoch (BCE + pos_weight, AdamW, clipping, length-bucketed batches).

Prints users per second for both, their ratio, the epoch time and the machine.
Usage: python bench/bench_train_epoch.py [--batch-size 64] [--models cnngru attentiongru]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine
from _results import record
from basket.config.run import TrainConfig
from basket.data import VocabConfig
from basket.data.prepare import prepare
from basket.models.modules import PredictorConfig
from basket.models.neural import NeuralRecommender
from basket.models.neural_training import train_one_epoch, training_examples
from basket.testing.networks import predict
from bench_load import INSTACART_USERS, ensure_instacart_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["cnngru", "attentiongru"])
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "out" / "instacart"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)

    folder = ensure_instacart_data(INSTACART_USERS, args.out)
    started = time.perf_counter()
    data = prepare(folder, VocabConfig(top_n=args.vocab_size))
    prepare_s = time.perf_counter() - started
    predictor = PredictorConfig()
    started = time.perf_counter()
    examples = training_examples(data.splits.valid_inputs, data.vocab, predictor, cuts=1)
    encode_s = time.perf_counter() - started
    n = examples.n_users
    config = TrainConfig(batch_size=args.batch_size)
    print(
        f"machine: {describe_machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"data: {n:,} training users, vocabulary {len(data.vocab):,}; prepare {prepare_s:.0f}s, encode {encode_s:.0f}s\n"
    )
    print(
        f"{'model':14} {'batch':>5} {'forward users/s':>16} {'train users/s':>14} {'train/forward':>14} {'epoch':>8}"
    )
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        net = NeuralRecommender.build(name, predictor, data.vocab, 10.0, config).net
        started = time.perf_counter()
        predict(net, examples, batch_size=args.batch_size)
        forward_s = time.perf_counter() - started
        optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((len(data.vocab),), 10.0))
        started = time.perf_counter()
        loss = train_one_epoch(
            net, examples, optimiser, loss_fn, config, torch.Generator().manual_seed(0)
        )
        epoch_s = time.perf_counter() - started
        assert np.isfinite(loss)
        row = {
            "model": name,
            "batch_size": args.batch_size,
            "users": n,
            "forward_users_per_s": n / forward_s,
            "train_users_per_s": n / epoch_s,
            "epoch_s": epoch_s,
        }
        rows.append(row)
        print(
            f"{name:14} {args.batch_size:5d} {row['forward_users_per_s']:16,.0f} {row['train_users_per_s']:14,.0f} "
            f"{row['train_users_per_s'] / row['forward_users_per_s']:14.2f} {epoch_s:7.0f}s"
        )
    out = args.out.parent / f"train_epoch_b{args.batch_size}.json"
    out.write_text(json.dumps({"machine": describe_machine(), "rows": rows}, indent=1))
    record(
        "train_epoch",
        "Neural training and scoring speed",
        ["model", "batch", "forward users/s", "train users/s", "epoch s"],
        [[row["model"], row["batch_size"], round(row["forward_users_per_s"]),
          round(row["train_users_per_s"]), round(row["epoch_s"])] for row in rows],
        parameters={"training_users": n, "vocabulary": len(data.vocab),
                    "threads": torch.get_num_threads()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
