"""``adv-net``: the adversarial networks of Wang & Yu (ICLR 2019 submission, "A direct approach
to robust deep learning using adversarial networks").

A generator G_phi (appendix Fig. 4: G0-G3) produces the perturbation ``eps * G`` and plays the
minimax of Eq. 4 against the classifier D_theta: G ascends F, D descends the gradient-
regularised F of Eq. 8 (Hessian-vector product by the finite difference of Eq. 9). Modules:
:mod:`.nets` (the generators), :mod:`.hvp` (Eqs. 8-9 as one scalar), :mod:`.objective` (the
training step and its schedule), :mod:`.attack` (a generator trained against a fixed
classifier, Sec. 4.5).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from advforge.defenses.adversarial import check_count, check_fraction
from advforge.defenses.advnet.attack import load_generator, train_generator_attack
from advforge.defenses.advnet.nets import DEFAULT_WIDTH, GENERATORS, build_generator
from advforge.defenses.advnet.objective import AdvNetObjective, AdvNetPlan
from advforge.defenses.base import DEFENSES, DefenseSettings
from advforge.errors import InputError
from advforge.training import Objective, TrainConfig

G_OPTIMIZERS = ("sgd", "adam")


def _positive(name: str, value: object, *, allow_zero: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    if not ok or value < 0 or (value == 0 and not allow_zero) or value == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a finite number {bound}, got {value!r}")


@DEFENSES.register("adv-net")
@dataclasses.dataclass(kw_only=True)
class AdvNet(DefenseSettings):
    """Adversarial networks (Wang & Yu, Eq. 4 with the regularisation of Eqs. 8-9).

    Defaults are the paper's MNIST setting (Sec. 3.2, 4.1): G0, lambda 1, gamma 0.01,
    5 ascent steps per G update, 5 G updates per D update, G by SGD(0.01, momentum 0.9,
    weight decay 1e-5), h = eta_G / 10. The paper's CIFAR-10 setting is ``g_updates 1``,
    ``generator g1``, ``g_optimizer adam``, ``g_lr 0.002``, ``g_momentum 0.5``.
    """

    name: ClassVar[str] = "adv-net"
    generator: str = dataclasses.field(default="g0", metadata={
        "help": "generator of the appendix: g0 (MNIST encoder-decoder), g1 (residual "
                "encoder-decoder), g2 (Gaussian noise input), g3 (label input)"})
    width: int | None = dataclasses.field(default=None, metadata={
        "help": "generator width k (default: 64, or 16 for g3)"})
    lam: float = dataclasses.field(default=1.0, metadata={
        "help": "lambda of Eq. 4: weight of the adversarial loss beside the clean one"})
    gamma: float = dataclasses.field(default=0.01, metadata={
        "help": "gamma of Eq. 8: gradient-regularisation weight (0: none)"})
    g_steps: int = dataclasses.field(default=5, metadata={
        "help": "gradient-ascent steps of G on the same mini-batch per G update"})
    g_updates: int = dataclasses.field(default=5, metadata={
        "help": "G updates (mini-batches) per classifier update (5 for MNIST, 1 for CIFAR)"})
    g_optimizer: str = dataclasses.field(default="sgd", metadata={
        "help": "G's optimiser: sgd or adam"})
    g_lr: float = dataclasses.field(default=0.01, metadata={"help": "G's learning rate eta_G"})
    g_momentum: float = dataclasses.field(default=0.9, metadata={
        "help": "G's SGD momentum, or Adam's beta1"})
    g_weight_decay: float = dataclasses.field(default=1e-5, metadata={
        "help": "G's weight decay"})
    fd_h: float | None = dataclasses.field(default=None, metadata={
        "help": "finite-difference step h of Eq. 9 (default: g_lr / 10)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.generator not in GENERATORS:
            raise InputError(f"generator must be one of {list(GENERATORS)}, "
                             f"got {self.generator!r}")
        if self.width is not None:
            check_count("width", self.width)
        _positive("lam", self.lam)
        _positive("gamma", self.gamma, allow_zero=True)
        check_count("g_steps", self.g_steps)
        check_count("g_updates", self.g_updates)
        if self.g_optimizer not in G_OPTIMIZERS:
            raise InputError(f"g_optimizer must be one of {list(G_OPTIMIZERS)}, "
                             f"got {self.g_optimizer!r}")
        _positive("g_lr", self.g_lr)
        check_fraction("g_momentum", self.g_momentum, allow_one=False)
        _positive("g_weight_decay", self.g_weight_decay, allow_zero=True)
        if self.fd_h is not None:
            _positive("fd_h", self.fd_h)

    def objective(self, splits: Any, train: TrainConfig) -> Objective:
        shape = tuple(splits.train.x.shape[1:])  # (C, H, W)
        if shape[1] != shape[2]:
            raise InputError(f"adv-net needs square images, got {shape[1]}x{shape[2]}")
        num_classes = int(splits.num_classes)
        # Build once on the meta device: a size the generator cannot take fails here, in
        # one line, before any training.
        with torch.device("meta"):
            build_generator(self.generator, shape[0], shape[1], num_classes, self.width)
        plan = AdvNetPlan(
            settings=dataclasses.asdict(self), generator=self.generator,
            width=self.width or DEFAULT_WIDTH[self.generator], in_channels=shape[0],
            image_size=shape[1], num_classes=num_classes, eps=float(self.eps), lam=self.lam,
            gamma=self.gamma, h=self.fd_h if self.fd_h is not None else self.g_lr / 10,
            g_steps=self.g_steps, g_updates=self.g_updates, g_optimizer=self.g_optimizer,
            g_lr=self.g_lr, g_momentum=self.g_momentum, g_weight_decay=self.g_weight_decay,
            seed=train.seed, out=train.out)
        return AdvNetObjective(plan)


__all__ = ["AdvNet", "AdvNetObjective", "build_generator", "load_generator",
           "train_generator_attack"]
