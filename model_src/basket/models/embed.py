"""Product embeddings (the "EV file"): an autoencoder over each product's co-purchase profile.

Profile: a product's row of the positive pointwise mutual information (PPMI)
matrix of products bought in the same basket, L2-normalised. Products bought
together, or with the same companions, get similar rows; the autoencoder
(V -> hidden -> dim -> hidden -> V) compresses each row to `dim` numbers, the
bottleneck being the embedding. The co-purchase counts come from a sample of at
most `max_baskets` baskets (sparse X^T X), so Instacart scale stays cheap.

Output: `embeddings.parquet` with `product_id, e0..e{dim-1}`, in vocabulary order.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

from basket.config.run import EmbedConfig
from basket.data.history import Histories
from basket.data.vocab import Vocabulary
from basket.io.atomic import atomic_file
from basket.models.sparse import normalise_rows

log = logging.getLogger(__name__)


def co_purchase_profiles(
    histories: Histories, vocab: Vocabulary, max_baskets: int, seed: int
) -> sp.csr_matrix:
    """(V, V) sparse PPMI of products in the same basket, rows L2-normalised."""
    n_orders = len(histories.order_ids)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(n_orders, dtype=bool)
    chosen[rng.permutation(n_orders)[:max_baskets]] = True
    items = vocab.index_of(histories.product_ids)
    order = histories.order_of_line()
    keep = chosen[order] & (items >= 0)
    baskets = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (order[keep], items[keep])),
        shape=(n_orders, len(vocab)),
    )
    baskets.data[:] = 1.0  # a product counts once per basket
    counts = (baskets.T @ baskets).tocoo()
    off_diagonal = counts.row != counts.col
    row, col, together = (
        counts.row[off_diagonal],
        counts.col[off_diagonal],
        counts.data[off_diagonal],
    )
    bought = np.asarray(baskets.sum(axis=0)).ravel()
    pmi = np.log(together * max(baskets.shape[0], 1) / (bought[row] * bought[col]))
    positive = pmi > 0
    ppmi = sp.csr_matrix(
        (pmi[positive], (row[positive], col[positive])), shape=(len(vocab), len(vocab))
    )
    return normalise_rows(ppmi)


class ProductAutoencoder(nn.Module):
    """V -> hidden -> dim (the embedding) -> hidden -> V."""

    def __init__(self, n_products: int, hidden: int, dim: int):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_products, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_products)
        )

    def forward(self, profiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(profiles)  # (B, dim)
        return code, self.decoder(code)  # (B, V)


def train_embeddings(
    profiles: sp.csr_matrix, config: EmbedConfig
) -> tuple[np.ndarray, list[float]]:
    """Fit the autoencoder on the profile rows; returns ((V, dim) embeddings, loss per epoch)."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    n_products = profiles.shape[0]
    model = ProductAutoencoder(n_products, config.hidden, config.dim)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    losses = []
    bar = tqdm(range(config.epochs), desc="embed", unit="epoch", leave=False, disable=None)
    for epoch in bar:
        total = 0.0
        for batch in torch.randperm(n_products, generator=generator).split(config.batch_size):
            rows = torch.from_numpy(profiles[batch.numpy()].toarray())
            _, reconstruction = model(rows)
            # Summed over products: the few co-purchased entries matter, not the mean of zeros.
            loss = ((reconstruction - rows) ** 2).sum(dim=1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / n_products)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        log.info("embed epoch %d/%d loss %.5f", epoch + 1, config.epochs, losses[-1])
    with torch.no_grad():
        codes, _ = model(
            torch.from_numpy(profiles.toarray()) if n_products <= 20_000 else _dense_rows(profiles)
        )
    return codes.numpy().astype(np.float32), losses


def _dense_rows(profiles: sp.csr_matrix) -> torch.Tensor:
    return torch.cat(
        [
            torch.from_numpy(profiles[i : i + 4096].toarray())
            for i in range(0, profiles.shape[0], 4096)
        ]
    )


def write_embeddings(vocab: Vocabulary, vectors: np.ndarray, path: Path | str) -> Path:
    """`embeddings.parquet`: product_id, e0..e{dim-1}, one row per vocabulary product in order."""
    frame = pd.DataFrame(vectors, columns=[f"e{i}" for i in range(vectors.shape[1])])
    frame.insert(0, "product_id", vocab.product_ids)
    with atomic_file(path) as temp:
        frame.to_parquet(temp, index=False)
    return Path(path)


def read_embeddings(path: Path | str, vocab: Vocabulary) -> np.ndarray:
    """(V, dim) float32 vectors aligned to `vocab`; products missing from the file get zeros."""
    frame = pd.read_parquet(path)
    vectors = frame.drop(columns=["product_id"]).to_numpy(np.float32)
    out = np.zeros((len(vocab), vectors.shape[1]), dtype=np.float32)
    index = vocab.index_of(frame["product_id"].to_numpy())
    out[index[index >= 0]] = vectors[index >= 0]
    return out


def embed_products(
    histories: Histories, vocab: Vocabulary, out_path: Path | str, config: EmbedConfig
) -> Path:
    """The stage: co-purchase profiles -> autoencoder -> `embeddings.parquet` at `out_path`."""
    profiles = co_purchase_profiles(histories, vocab, config.max_baskets, config.seed)
    vectors, losses = train_embeddings(profiles, config)
    log.info("embeddings: %d products x %d dims, final loss %.5f", *vectors.shape, losses[-1])
    return write_embeddings(vocab, vectors, out_path)
