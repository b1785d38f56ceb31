"""The neural predictors: shapes, padding that never changes a prediction, the repeat gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from basket.data.user_products import N_FEATURES
from basket.models.encoding import encode
from basket.models.modules import PredictorConfig
from basket.testing.networks import CNNGRU, AttentionGRU

BUILDERS = [CNNGRU, AttentionGRU]


def _net(builder, vocab, **overrides):
    torch.manual_seed(0)
    net = builder(PredictorConfig(order_hidden=32, **overrides), len(vocab), N_FEATURES)
    return net.eval()


@pytest.mark.parametrize("builder", BUILDERS)
def test_logits_cover_the_vocabulary(builder, prepared):
    net = _net(builder, prepared.vocab)
    encoded = encode(prepared.splits.eval_inputs, prepared.vocab, n_orders=5, max_products=40)
    logits = net(encoded.batch(np.arange(7)))
    assert logits.shape == (7, len(prepared.vocab))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("builder", BUILDERS)
def test_padded_products_never_change_a_prediction(builder, prepared):
    net = _net(builder, prepared.vocab)
    history = prepared.splits.eval_inputs
    tight = encode(
        history, prepared.vocab, n_orders=5, max_products=int(history.basket_sizes().max())
    )
    loose = encode(
        history, prepared.vocab, n_orders=5, max_products=int(history.basket_sizes().max()) + 30
    )
    users = np.arange(20)
    with torch.no_grad():
        torch.testing.assert_close(
            net(tight.batch(users)), net(loose.batch(users)), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("builder", BUILDERS)
def test_padded_orders_never_change_a_prediction(builder, prepared):
    """Users with fewer orders than the window: a wider window only adds padding."""
    net = _net(builder, prepared.vocab)
    history = prepared.splits.eval_inputs
    short = np.flatnonzero(history.orders_per_user() <= 5)[:10]
    assert len(short) > 0
    picked = history.select_users(short)
    narrow = encode(picked, prepared.vocab, n_orders=5, max_products=40)
    wide = encode(picked, prepared.vocab, n_orders=9, max_products=40)
    users = np.arange(len(short))
    with torch.no_grad():
        torch.testing.assert_close(
            net(narrow.batch(users)), net(wide.batch(users)), rtol=1e-5, atol=1e-5
        )


def test_a_batch_does_not_leak_between_users(prepared):
    """A user's logits are the same alone or beside others."""
    net = _net(CNNGRU, prepared.vocab)
    encoded = encode(prepared.splits.eval_inputs, prepared.vocab, n_orders=5, max_products=40)
    with torch.no_grad():
        together = net(encoded.batch(np.arange(6)))
        alone = net(encoded.batch(np.array([3])))
    torch.testing.assert_close(together[3:4], alone, rtol=1e-5, atol=1e-5)


def test_repeat_gate_only_rescores_products_bought_before(prepared):
    net = _net(CNNGRU, prepared.vocab)
    encoded = encode(prepared.splits.eval_inputs, prepared.vocab, n_orders=5, max_products=40)
    batch = encoded.batch(np.arange(4))
    with torch.no_grad():
        gated = net(batch)
        net.gate = None
        plain = net(batch)
    bought = torch.zeros_like(plain, dtype=torch.bool)
    bought[batch.stat_rows, batch.stat_items] = True
    torch.testing.assert_close(gated[~bought], plain[~bought])
    assert not torch.allclose(gated[bought], plain[bought])


def test_unknown_encoder_is_refused(prepared):
    from basket.models.modules import NextBasketNet

    with pytest.raises(ValueError, match="encoder"):
        NextBasketNet(PredictorConfig(encoder="transformer"), len(prepared.vocab), N_FEATURES)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_the_cnn_order_vector_is_each_channels_largest_response_over_its_products(kernel_size):
    """Max pooling over an order's real products (never its padding, whatever it holds), then
    ReLU; an empty order is a zero vector. The encoder convolves the real products alone: the
    padded convolution with zeros past each order's end (what padded products embed to) is
    the reference."""
    from basket.models.modules import OrderEncoderCNN

    torch.manual_seed(0)
    encoder = OrderEncoderCNN(embed_dim=8, hidden=16, kernel_size=kernel_size)
    products = torch.randn(4, 5, 8)  # the padding holds noise here: it must not count
    mask = torch.tensor(
        [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool
    )
    with torch.no_grad():
        pooled = encoder(products, mask)
        responses = encoder.conv((products * mask[..., None]).transpose(1, 2))  # (4, 16, 5)
    expected = torch.stack([
        torch.relu(responses[0, :, :3].max(dim=1).values),
        torch.relu(responses[1].max(dim=1).values),
        torch.zeros(16),
        torch.relu(responses[3, :, 0]),
    ])  # fmt: skip
    torch.testing.assert_close(pooled, expected)


def test_the_cnn_encoder_learns_through_its_pooling():
    """Gradients reach the convolution's weights and the real products, not the padding."""
    from basket.models.modules import OrderEncoderCNN

    torch.manual_seed(0)
    encoder = OrderEncoderCNN(embed_dim=4, hidden=6, kernel_size=3)
    products = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    encoder(products, mask).sum().backward()
    assert encoder.conv.weight.grad.abs().sum() > 0
    assert products.grad[mask].abs().sum() > 0
    assert (products.grad[~mask] == 0).all()


def test_an_even_cnn_window_is_refused():
    from basket.models.modules import OrderEncoderCNN

    with pytest.raises(ValueError, match="odd"):
        OrderEncoderCNN(embed_dim=4, hidden=6, kernel_size=4)
