"""`--device`: auto, cpu or cuda, with a clear error where CUDA is asked for and absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from basket.models.device import resolve_device
from basket.models.encoding import encode


def test_auto_takes_cuda_only_where_torch_sees_it():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")


def test_an_unknown_device_is_refused_by_name():
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_a_batch_moves_whole_to_a_device(prepared):
    encoded = encode(prepared.splits.eval_inputs, prepared.vocab, 5, 40)
    batch = encoded.batch(np.arange(8))
    moved = batch.to(resolve_device("auto"))
    for name in ("orders", "order_context", "lengths", "stat_items", "stat_features"):
        before, after = getattr(batch, name), getattr(moved, name)
        assert after.dtype == before.dtype and torch.equal(after.cpu(), before), name
