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

from advforge.errors import InputError
from advforge.utils.validate import check_images, check_labels, check_targets


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attack(ABC):
    """Base class of every optimisation attack.

    Class attributes:
        name: the registry key.
        norm: ``"linf"`` or ``"l2"`` when the attack guarantees ``||x_adv - x|| <= eps``;
            ``None`` for minimum-norm attacks (C&W L2, L-BFGS) that have no fixed budget.
        takes_target: False for an attack that chooses its own target (``fgsm_ll``); such an
            attack refuses ``target=`` rather than silently becoming another attack.
    """

    name: ClassVar[str] = ""
    norm: ClassVar[str | None] = None
    takes_target: ClassVar[bool] = True

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
            if not self.takes_target:
                raise InputError(f"{self.name} chooses its own target; it takes no target= "
                                 "(use a targeted attack such as fgsm or pgd for that)")
        self.check_budget(x)
        if num_classes is None:  # a plain nn.Module: its first forward pass reveals K
            model = ClassCountCheck(model, y, target)
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

    def check_budget(self, x: torch.Tensor) -> None:
        """Refuse an L2 ``eps`` above sqrt(C*H*W), the L2 diameter of [0, 1]^(C*H*W): such a
        budget allows any image at all. It needs the image shape, so it is checked per call;
        an L-inf ``eps`` above 1 needs none and is refused when the attack is built."""
        eps = getattr(self, "eps", None)
        if self.norm == "l2" and eps is not None and eps > x[0].numel() ** 0.5:
            raise InputError(f"{self.name}: L2 eps {eps:g} exceeds sqrt(C*H*W) = "
                             f"{x[0].numel() ** 0.5:.4g}, the largest distance in [0, 1] images")

    def hyper(self) -> dict[str, Any]:
        """The hyperparameters as a JSON-friendly dict (recorded in every report)."""
        return dataclasses.asdict(self)


class ClassCountCheck(nn.Module):
    """Wraps a model that does not declare ``num_classes`` (a plain ``nn.Module``).

    Its first forward pass reveals the class count ``K = logits.shape[1]``; labels and targets
    are checked against it there, before any loss indexes logits with them, so an
    out-of-range class gets the same one-line InputError a wrapped ``ImageClassifier`` gives
    instead of torch's IndexError (or a device-side assert on CUDA). Later calls pass through.
    """

    def __init__(self, model: nn.Module, y: torch.Tensor, target: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.training = model.training  # mirror, never flip (chunking reads it)
        self._pending: tuple[torch.Tensor, torch.Tensor | None] | None = (y, target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if self._pending is not None:
            y, target = self._pending
            self._pending = None
            if logits.dim() != 2:
                raise InputError(f"the model must return (B, K) logits, got shape "
                                 f"{tuple(logits.shape)}")
            check_labels(y, y.shape[0], logits.shape[1])
            if target is not None:
                check_labels(target, y.shape[0], logits.shape[1], name="target")
        return logits
