"""APGD-T (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020, Section 4): Algorithm 1 (apgd.py) ascending the
targeted DLR loss ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` (Eq. 7); L-inf
(``apgd_t``) and L2 (``apgd_t_l2``).

Untargeted use runs once towards each of the ``n_target_classes`` highest-scoring non-true
classes of the clean input, each run only on the inputs no earlier run fooled, so every input
keeps its first success (else the point with the highest untargeted DLR). With ``target=`` it
runs towards that class only and succeeds when the prediction equals it. The loss needs the
third and fourth largest logits, so a model with fewer than 4 classes is refused.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from advforge.attacks.apgd import _AutoPGD, best_so_far
from advforge.attacks.hyper import check_int
from advforge.attacks.losses import dlr, dlr_targeted
from advforge.attacks.pgd import aimed_classes
from advforge.attacks.registry import ATTACKS
from advforge.errors import InputError


@ATTACKS.register("apgd_t")
@dataclasses.dataclass(frozen=True, kw_only=True)
class APGDT(_AutoPGD):
    """APGD with the targeted DLR loss.

    Args:
        n_target_classes: how many of the highest non-true classes to try (9; at most K - 1).
    """

    name: ClassVar[str] = "apgd_t"

    n_target_classes: int = 9

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self.n_target_classes, "n_target_classes")

    def objective(self, logits, y, target, aim) -> torch.Tensor:
        return dlr_targeted(logits, y, aim)

    def score(self, logits, y, target, aim) -> torch.Tensor:
        return dlr(logits, y) if target is None else self.objective(logits, y, target, aim)

    def perturb(self, model, x, y, *, target, generator):
        with torch.no_grad():  # the clean logits rank the targets (and reveal K)
            logits = model(x)
        num_classes = logits.shape[1]
        if num_classes < 4:
            raise InputError(f"{self.name} needs a model with at least 4 classes (the DLR-T loss "
                             f"uses the 3rd and 4th largest logits); this one has {num_classes}")
        best, best_ok, best_score = best_so_far(x, y, logits, target)
        aims = aimed_classes(logits, y, target, self.n_target_classes)
        for aim in aims:
            self.search(model, x, y, target, aim, generator, best, best_ok, best_score)
        return best


@ATTACKS.register("apgd_t_l2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class APGDTL2(APGDT):
    """L2 APGD-T: normalised-gradient steps, projection onto the L2 ball (eps 2.0, as
    ``pgd_l2``)."""

    name: ClassVar[str] = "apgd_t_l2"
    norm: ClassVar[str | None] = "l2"

    eps: float = 2.0
