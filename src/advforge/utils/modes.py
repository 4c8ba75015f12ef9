"""Context manager that sets a module's train/eval mode and restores it afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def model_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Temporarily put ``model`` (and every submodule) in ``"train"`` or ``"eval"`` mode.

    Attacks never flip modes themselves (docs/contract.md); callers that need a mode use this so the
    model's previous per-submodule state comes back exactly.
    """
    if mode not in ("train", "eval"):
        raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
    saved = [(m, m.training) for m in model.modules()]
    model.train(mode == "train")
    try:
        yield model
    finally:
        for module, was_training in saved:
            module.training = was_training
