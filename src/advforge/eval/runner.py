"""The two primitives every evaluation loop shares: clean predictions and a timed attack call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from advforge.errors import AdvforgeError, InputError

AttackFn = Callable[..., torch.Tensor]


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, int]:
    """Predicted classes (N,) of ``x`` under ``torch.no_grad()``, and the number of logits K."""
    preds, num_classes = [], None
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start : start + batch_size])  # (B, K)
            if logits.dim() != 2:
                raise InputError(f"the model must return (B, K) logits, got {tuple(logits.shape)}")
            num_classes = logits.shape[1]
            preds.append(logits.argmax(dim=1))
    return torch.cat(preds), int(num_classes)


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without a sync the clock stops before the attack ends.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def call_attack(
    attack: AttackFn,
    model: nn.Module,
    xb: torch.Tensor,
    yb: torch.Tensor,
    tb: torch.Tensor | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, float]:
    """One timed attack call; only this wall time counts towards ``seconds`` (Table VI)."""
    kwargs: dict[str, Any] = {"target": tb}
    if generator is not None:  # third-party callables may not take a generator
        kwargs["generator"] = generator
    _sync(xb.device)
    start = time.perf_counter()
    x_adv = attack(model, xb, yb, **kwargs)
    _sync(xb.device)
    elapsed = time.perf_counter() - start
    if not isinstance(x_adv, torch.Tensor) or x_adv.shape != xb.shape:
        shape = tuple(x_adv.shape) if isinstance(x_adv, torch.Tensor) else type(x_adv).__name__
        raise AdvforgeError(f"the attack returned {shape}, expected {tuple(xb.shape)}")
    return x_adv.detach(), elapsed
