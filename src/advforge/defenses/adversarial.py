"""Adversarial training against a fixed attack: FGSM-AT and PGD-AT.

* ``fgsm-at``: Goodfellow et al. (ICLR 2015), Eq. 6 there:
  ``J~(x, y) = alpha J(x, y) + (1 - alpha) J(x + eps sign(grad_x J(x, y)), y)``, alpha = 0.5.
* ``pgd-at``: Madry et al. (ICLR 2018): ``min_theta E max_{||d|| <= eps} J(x + d, y)`` with the
  inner max by PGD from a random start; adversarial networks (Wang & Yu) Eq. 11 uses 10 steps
  of eps/4, which are the defaults. ``clean_weight`` > 0 mixes in the clean loss as FGSM-AT
  does (0 is Madry's objective).

The attack that crafts the training examples sees the model in eval mode (BatchNorm uses its
running statistics and is not updated by the attack's forward passes; dropout is off); the
step on the classifier then runs in train mode. Crafting uses the unwrapped model, so under
``torchrun`` DDP sees exactly one forward per backward.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from advforge import attacks
from advforge.defenses.base import DEFENSES, DefenseSettings
from advforge.errors import InputError
from advforge.training import Objective, StepContext, TrainConfig
from advforge.utils.modes import model_mode


def check_fraction(name: str, value: object, *, allow_one: bool = True) -> None:
    """Refuse anything but a number in [0, 1] (or [0, 1) when ``allow_one`` is False)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    if not ok or value < 0 or value > 1 or (value == 1 and not allow_one):
        bounds = "[0, 1]" if allow_one else "[0, 1)"
        raise InputError(f"{name} must lie in {bounds}, got {value!r}")


def check_count(name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")


def ramped_eps(eps: float, ramp_epochs: int, progress: float) -> float:
    """``eps`` scaled linearly from 0 at the start of training to full size after
    ``ramp_epochs`` epochs (0: full size at once). Ramping the budget is a common aid for
    PGD-AT on MNIST, where a full-size adversary from the first step can stall learning."""
    if ramp_epochs <= 0:
        return eps
    return eps * min(1.0, progress / ramp_epochs)


def craft(ctx: StepContext, attack: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``attack(model, x, y)`` on the unwrapped model in eval mode (restored afterwards)."""
    with model_mode(ctx.module, "eval"):
        return attack(ctx.module, x, y, generator=ctx.generator)


class MixedAdversarialObjective(Objective):
    """``clean_weight * CE(x, y) + (1 - clean_weight) * CE(x_adv, y)`` with ``x_adv`` from
    ``make_attack(eps)``; one forward pass over the clean and adversarial halves together.

    Args:
        name: the defense's name (recorded).
        settings: the defense's settings dict (recorded; a resume must match it).
        make_attack: eps -> a registered attack (called with the ramped eps).
        eps: the full budget.
        clean_weight: alpha of Goodfellow et al.'s Eq. 6.
        ramp_epochs: epochs over which eps grows from 0 to full size.
    """

    def __init__(self, name: str, settings: dict[str, Any], make_attack: Any, eps: float,
                 clean_weight: float, ramp_epochs: int = 0) -> None:
        self.name, self.settings = name, settings
        self.make_attack, self.eps = make_attack, eps
        self.clean_weight, self.ramp_epochs = clean_weight, ramp_epochs

    def adversarial(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps = ramped_eps(self.eps, self.ramp_epochs, ctx.progress)
        if eps <= 0:
            return x
        return craft(ctx, self.make_attack(eps), x, y)

    def step(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.adversarial(ctx, x, y)
        w = self.clean_weight
        batch = torch.cat([x, x_adv]) if w > 0 else x_adv
        logits = ctx.model(batch)  # (2B, K) or (B, K)
        b = x.shape[0]
        loss_adv = F.cross_entropy(logits[-b:], y)
        loss = w * F.cross_entropy(logits[:b], y) + (1 - w) * loss_adv if w > 0 else loss_adv
        ctx.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ctx.optimizer.step()
        # Accuracy on the clean half when there is one, else on the adversarial batch.
        return loss.detach() * b, (logits[:b].detach().argmax(1) == y).sum()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.settings}


@DEFENSES.register("fgsm-at")
@dataclasses.dataclass(kw_only=True)
class FGSMAT(DefenseSettings):
    """FGSM adversarial training (Goodfellow et al. 2015, Eq. 6).

    Attributes:
        alpha: weight of the clean loss (0.5 in the paper).
        label: ``"true"`` crafts FGSM on the true label as Goodfellow et al. do;
            ``"predicted"`` on the model's prediction, which avoids label leaking (Kurakin
            et al. 2017).
    """

    name: ClassVar[str] = "fgsm-at"
    alpha: float = dataclasses.field(default=0.5, metadata={
        "help": "weight of the clean loss, alpha of Goodfellow et al.'s Eq. 6"})
    label: str = dataclasses.field(default="true", metadata={
        "help": "craft FGSM on the true label or the model's predicted one (no label leaking)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("alpha", self.alpha, allow_one=False)
        if self.label not in ("true", "predicted"):
            raise InputError(f"label must be 'true' or 'predicted', got {self.label!r}")

    def objective(self, splits: Any, train: TrainConfig) -> Objective:
        fgsm = attacks.create("fgsm", eps=self.eps)
        if self.label == "predicted":
            return PredictedLabelObjective(self.name, dataclasses.asdict(self),
                                           lambda eps: fgsm, self.eps, self.alpha)
        return MixedAdversarialObjective(self.name, dataclasses.asdict(self),
                                         lambda eps: fgsm, self.eps, self.alpha)


class PredictedLabelObjective(MixedAdversarialObjective):
    """Crafts on the model's own prediction (eval mode) instead of the true label."""

    def adversarial(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), model_mode(ctx.module, "eval"):
            predicted = ctx.module(x).argmax(1)
        return super().adversarial(ctx, x, predicted)


@DEFENSES.register("pgd-at")
@dataclasses.dataclass(kw_only=True)
class PGDAT(DefenseSettings):
    """PGD adversarial training (Madry et al. 2018) with the attack of Wang & Yu's Eq. 11.

    Attributes:
        steps: PGD steps per training batch.
        step_fraction: step size as a fraction of eps (1/4: eps/4, as Wang & Yu use).
        random_start: start uniformly in the eps-ball (Madry et al.).
        clean_weight: weight of the clean loss (0: Madry's purely adversarial objective).
        eps_ramp_epochs: grow eps linearly from 0 over this many epochs (0: no ramp).
    """

    name: ClassVar[str] = "pgd-at"
    steps: int = dataclasses.field(default=10, metadata={"help": "PGD steps per batch"})
    step_fraction: float = dataclasses.field(default=0.25, metadata={
        "help": "PGD step size as a fraction of eps (0.25: eps/4)"})
    random_start: bool = dataclasses.field(default=True, metadata={
        "help": "start PGD uniformly inside the eps-ball"})
    clean_weight: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of the clean loss beside the adversarial one (0: Madry et al.)"})
    eps_ramp_epochs: int = dataclasses.field(default=0, metadata={
        "help": "epochs over which eps grows linearly from 0 to full size (0: no ramp)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("steps", self.steps)
        check_fraction("step_fraction", self.step_fraction)
        if self.step_fraction == 0:
            raise InputError("step_fraction must be > 0")
        check_fraction("clean_weight", self.clean_weight, allow_one=False)
        check_count("eps_ramp_epochs", self.eps_ramp_epochs, minimum=0)
        if not isinstance(self.random_start, bool):
            raise InputError(f"random_start must be true or false, got {self.random_start!r}")

    def objective(self, splits: Any, train: TrainConfig) -> Objective:
        def make_attack(eps: float) -> Any:
            return attacks.create("pgd", eps=eps, steps=self.steps,
                                  step_size=eps * self.step_fraction,
                                  random_start=self.random_start)

        return MixedAdversarialObjective(self.name, dataclasses.asdict(self), make_attack,
                                         self.eps, self.clean_weight, self.eps_ramp_epochs)
