"""A generator's forward under ``torch.compile``, with an eager fallback.

Inductor fuses the elementwise passes around each convolution (batch-norm affine, ReLU,
residual add), which the eager path runs one by one over the activations: about a third of
the lean AI-GAN G's eager time in a CPU profile. ``dynamic=True`` compiles once for every batch
size (a static graph would recompile for each new chunk remainder). The first call pays
for the compilation (seconds, and a C++ compiler on the CPU), so compiling pays only for
bulk forging: it is an option (``GeneratorAttack(compiled=True)``), not a default.

Where compiling fails (no compiler, an operator inductor lacks), the network runs eagerly
from then on, with one warning: the outputs are the same network's either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class CompiledForward:
    """Calls ``net`` through ``torch.compile`` (compiled on the first call), or eagerly once
    compiling has failed."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self._compiled: Callable[..., Any] | None = None
        self.failed: str | None = None  # why compiling failed, once it has

    def __call__(self, *args: Any) -> Any:
        if self.failed is not None:
            return self.net(*args)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.net, dynamic=True)
            return self._compiled(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            self.failed = f"{type(exc).__name__}: {first}"
            warnings.warn(f"torch.compile could not compile the generator ({self.failed}); "
                          "it runs eagerly", RuntimeWarning, stacklevel=2)
            return self.net(*args)
