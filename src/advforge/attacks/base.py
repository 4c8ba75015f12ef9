"""The Attack base class: a frozen keyword-only dataclass of hyperparameters.

Subclasses implement :meth:`Attack.perturb`; :meth:`Attack.__call__` validates the inputs once
(shape, range, NaN, labels, targets) so every attack obeys the same contract (docs/contract.md):

* ``attack(model, x, y, *, target=None) -> x_adv`` with ``x`` float (B, C, H, W) in [0, 1];
* targeting is data: ``target`` is None (untargeted), an int or a (B,) tensor of classes;
* ``x_adv`` has the shape, dtype and device of ``x``, lies in [0, 1] and, for bounded attacks,
  inside the ``norm`` ball of radius ``eps`` around ``x``;
* gradients come from ``torch.autograd.grad`` only, so parameter ``.grad`` is never touched,
  and the model's train/eval mode is never changed.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from advforge.utils.validate import check_images, check_labels, check_targets


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attack(ABC):
    """Base class of every optimisation attack.

    Class attributes:
        name: the registry key.
        norm: ``"linf"`` or ``"l2"`` when the attack guarantees ``||x_adv - x|| <= eps``;
            ``None`` for minimum-norm attacks (C&W L2, L-BFGS) that have no fixed budget.
    """

    name: ClassVar[str] = ""
    norm: ClassVar[str | None] = None

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        target: torch.Tensor | int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Return adversarial images for ``x`` (true labels ``y``), towards ``target`` if given.

        Args:
            model: maps images in [0, 1] to logits (normalisation inside the model).
            x: (B, C, H, W) float images in [0, 1].
            y: (B,) true labels.
            target: None for untargeted, else an int or (B,) tensor of target classes != y.
            generator: optional RNG for random starts (reproducible runs).

        Returns:
            x_adv: (B, C, H, W), detached, same dtype and device as ``x``.
        """
        num_classes = getattr(model, "num_classes", None)
        check_images(x, channels=getattr(model, "in_channels", None))
        check_labels(y, x.shape[0], num_classes)
        if target is not None:
            target = check_targets(target, y, num_classes)
        x = x.detach()
        with torch.enable_grad():
            x_adv = self.perturb(model, x, y.to(x.device), target=target, generator=generator)
        return x_adv.detach().to(dtype=x.dtype)

    @abstractmethod
    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        target: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Compute ``x_adv`` from already-validated inputs (grad mode is on)."""

    def hyper(self) -> dict[str, Any]:
        """The hyperparameters as a JSON-friendly dict (recorded in every report)."""
        return dataclasses.asdict(self)
