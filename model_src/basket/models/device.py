"""Which torch device a run uses: `auto` (CUDA when this machine has it, else CPU), `cpu`, `cuda`."""

from __future__ import annotations

import torch

from basket.config.run import DEVICES


def resolve_device(name: str) -> torch.device:
    """The torch device for `name`; a clear error when CUDA is asked for and absent."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device here")
    return torch.device(name)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device `module`'s parameters live on."""
    return next(module.parameters()).device
