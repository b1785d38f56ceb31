"""The neural predictors: CNNGRU and AttentionGRU, assembled from small modules.

    orders (B, N, M) product indices ──embedding──► (B, N, M, E)
        OrderEncoderCNN | OrderEncoderAttention   one vector per order        (B, N, H)
        + order context (dow, hour, days since)                              (B, N, H + C)
        OrderSequenceGRU                          last hidden state          (B, H)
        + next-order context ──► PredictionHead   one logit per product      (B, V)
        RepeatGate: products bought before are scored from own frequency, recency, cycle x user

Padding (products past an order's end, orders before a short history) never
changes a logit: padded products embed to exact zeros and are masked out of the
pooling, padded orders come after the real ones and the GRU's state is read at
the last real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from basket.config.run import PredictorConfig

CONTEXT_FEATURES = 6  # sin/cos day of week, sin/cos hour, days since prior / 30, first order


@dataclass
class Batch:
    """Model inputs for B users (tensors); `stat_*` are sparse (user, product) features."""

    orders: torch.Tensor  # (B, N, M) long, padding = V
    order_context: torch.Tensor  # (B, N, C) float
    lengths: torch.Tensor  # (B,) long, real orders (>= 1)
    next_context: torch.Tensor  # (B, C) float
    stat_rows: torch.Tensor  # (S,) long, row in the batch
    stat_items: torch.Tensor  # (S,) long, vocabulary index
    stat_features: torch.Tensor  # (S, F) float
    # Products bought beyond the output layer, which only the repeat gate scores (when scoring).
    tail_rows: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    tail_items: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    tail_features: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))

    def to(self, device: torch.device) -> Batch:
        """The same batch on `device`."""
        return Batch(*(getattr(self, f.name).to(device) for f in fields(self)))


class OrderEncoderCNN(nn.Module):
    """1-D convolution over an order's product embeddings, then max pooling to one vector.

    Only an order's real products are convolved: the padding after them is two thirds of a
    padded (orders x products) block on Instacart-like baskets, and it embeds to exact zeros,
    so a product's neighbour past the order's end (or before its start) contributes nothing,
    as the padded convolution's zero padding does. The values are the padded convolution's
    (to float rounding); the work is the real products'."""

    def __init__(self, embed_dim: int, hidden: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred on a product), got {kernel_size}")
        self.conv = nn.Conv1d(embed_dim, hidden, kernel_size, padding=kernel_size // 2)

    def forward(self, products: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(R, H) order vectors of (R, M, E) product embeddings whose real products, `mask`
        (R, M), come first in each order; an order without products is a zero vector."""
        n_orders, hidden = mask.shape[0], self.conv.out_channels
        width = self.conv.kernel_size[0]
        real = products[mask]  # (L, E), order by order, in cart order
        order_of = mask.nonzero()[:, 0]  # (L,)
        # responses[p, j] = W_j . x_p: product p's share in the output at p - (j - width // 2)
        weights = self.conv.weight.permute(1, 2, 0).reshape(real.shape[1], width * hidden)
        responses = (real @ weights).view(-1, width, hidden)
        out = responses[:, width // 2] + self.conv.bias
        for j in range(width):
            shift = j - width // 2  # output at p reads product p + shift
            if shift > 0:
                same = (order_of[shift:] == order_of[:-shift]).unsqueeze(1)
                out[:-shift] += responses[shift:, j] * same
            elif shift < 0:
                same = (order_of[:shift] == order_of[-shift:]).unsqueeze(1)
                out[-shift:] += responses[:shift, j] * same
        # ReLU is monotonic, so relu(max) == max(relu): applied after pooling, exact and cheap.
        pooled = out.new_zeros(n_orders, hidden).scatter_reduce(
            0, order_of.unsqueeze(1).expand(-1, hidden), out, "amax", include_self=False
        )
        return torch.relu(pooled)


class OrderEncoderAttention(nn.Module):
    """Multi-head attention pooling: a learned query attends over an order's products."""

    def __init__(self, embed_dim: int, hidden: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.attention = nn.MultiheadAttention(embed_dim, heads, batch_first=True)
        self.project = nn.Linear(embed_dim, hidden)

    def forward(self, products: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        empty = ~mask.any(dim=1)  # (B,)
        ignore = ~mask
        ignore[empty, 0] = False  # an empty order attends to one zero vector, then is zeroed
        query = self.query.expand(products.shape[0], -1, -1)  # (B, 1, E)
        pooled, _ = self.attention(
            query, products, products, key_padding_mask=ignore, need_weights=False
        )
        vector = torch.relu(self.project(pooled.squeeze(1)))  # (B, H)
        return vector.masked_fill(empty[:, None], 0.0)


class OrderSequenceGRU(nn.Module):
    """A GRU over the order vectors, oldest first; its last hidden state summarises the customer."""

    def __init__(self, input_dim: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.gru = nn.GRU(
            input_dim, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )

    def forward(self, orders: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, H) the top layer's state after each customer's `lengths` real orders of (B, N,
        input) orders padded at the end. The padded steps run after the real ones and are never
        read, so they change nothing; with N of 5, running them costs less than packing."""
        outputs, _ = self.gru(orders)  # (B, N, H)
        last = (lengths.clamp(min=1) - 1).to(outputs.device)
        return outputs[torch.arange(outputs.shape[0], device=outputs.device), last]


class PredictionHead(nn.Module):
    """Fully connected layers from the customer summary to one logit per product."""

    def __init__(self, input_dim: int, hidden: int, n_products: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_products),
        )

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.layers(state)  # (B, V)


class RepeatGate(nn.Module):
    """Repeat/explore gate: products the customer bought before are scored from their own
    frequency, recency and cycle, modulated by the customer summary; never-bought products
    keep the head's (explore) logit. A learned share of the head's logit reaches repeats too."""

    def __init__(self, n_features: int, state_dim: int, hidden: int, user_dim: int = 8):
        super().__init__()
        self.normalise = nn.LayerNorm(n_features)
        self.user = nn.Linear(state_dim, user_dim)
        self.score = nn.Sequential(
            nn.Linear(n_features + user_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.head_share = nn.Parameter(torch.tensor(0.1))

    def repeat(self, features: torch.Tensor, rows: torch.Tensor, state: torch.Tensor):
        """(S,) repeat logits of the entries `features` (S, F) of batch rows `rows`."""
        user = self.user(state)[rows]  # (S, user_dim)
        return self.score(torch.cat([self.normalise(features), user], dim=-1)).squeeze(-1)

    def forward(self, batch: Batch, state: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        repeat = self.repeat(batch.stat_features, batch.stat_rows, state)  # (S,)
        mixed = logits.clone()
        mixed[batch.stat_rows, batch.stat_items] = (
            repeat + self.head_share * logits[batch.stat_rows, batch.stat_items]
        )
        return mixed


class NextBasketNet(nn.Module):
    """Order encoder + GRU + head (+ repeat gate): logits over the vocabulary for each customer."""

    def __init__(self, config: PredictorConfig, n_products: int, n_stat_features: int):
        super().__init__()
        self.config = config
        self.n_products = n_products
        self.products = nn.Embedding(n_products + 1, config.embed_dim, padding_idx=n_products)
        if config.encoder == "cnn":
            self.encoder = OrderEncoderCNN(
                config.embed_dim, config.order_hidden, config.kernel_size
            )
        elif config.encoder == "attention":
            self.encoder = OrderEncoderAttention(
                config.embed_dim, config.order_hidden, config.attn_heads
            )
        else:
            raise ValueError(f"encoder must be 'cnn' or 'attention', got {config.encoder!r}")
        width = config.order_hidden + CONTEXT_FEATURES
        self.sequence = OrderSequenceGRU(
            width, config.order_hidden, config.n_layers, config.dropout
        )
        self.head = PredictionHead(width, config.order_hidden, n_products, config.dropout)
        self.gate = (
            RepeatGate(n_stat_features, width, config.gate_hidden) if config.repeat_gate else None
        )

    def load_embeddings(self, vectors: torch.Tensor) -> None:
        """Start from the EV file's (V, E) vectors; the padding row stays zero."""
        with torch.no_grad():
            self.products.weight[: self.n_products] = vectors
            self.products.weight[self.n_products] = 0.0
        self.products.weight.requires_grad_(self.config.fine_tune_embeddings)

    def forward(self, batch: Batch) -> torch.Tensor:
        """(B, V) logits of the output layer's products."""
        return self.forward_with_tail(batch)[0]

    def forward_with_tail(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V) logits of the output layer's products, and (S_t,) logits of the products
        bought beyond it (`batch.tail_*`): the repeat gate's score alone (-inf without a gate)."""
        b, n, m = batch.orders.shape
        products = self.products(batch.orders.view(b * n, m))  # (B*N, M, E)
        mask = batch.orders.view(b * n, m) != self.n_products  # (B*N, M)
        orders = self.encoder(products, mask).view(b, n, -1)  # (B, N, H)
        orders = torch.cat([orders, batch.order_context], dim=-1)  # (B, N, H + C)
        summary = self.sequence(orders, batch.lengths)  # (B, H)
        state = torch.cat([summary, batch.next_context], dim=-1)  # (B, H + C)
        logits = self.head(state)  # (B, V)
        if self.gate is None:
            return logits, torch.full(batch.tail_rows.shape, -torch.inf, device=logits.device)
        tail = (
            self.gate.repeat(batch.tail_features, batch.tail_rows, state)
            if batch.tail_rows.numel()
            else logits.new_zeros(0)
        )
        return self.gate(batch, state, logits), tail
