"""A generator trained as the attacker of a fixed classifier (Wang & Yu Sec. 4.5, Tables 5-6).

G ascends ``CE(D(x + eps G(.)), y)`` with D frozen in eval mode; once trained, G attacks
without knowing D's parameters (and transfers to other classifiers: the tables' black-box
columns). Sec. 4.5 trains it with SGD (0.01, momentum 0.9, weight decay 1e-5), the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advforge.defenses.advnet.nets import AdvGenerator, adversarial, build_generator
from advforge.defenses.advnet.objective import (
    GENERATOR_CONFIG,
    GENERATOR_FILE,
    make_generator_optimizer,
)
from advforge.errors import CheckpointError, InputError
from advforge.utils.checkpoint import load_safetensors, read_json
from advforge.utils.modes import model_mode
from advforge.utils.validate import check_eps, check_images

Perturb = Callable[..., torch.Tensor]


def perturber(g: AdvGenerator, eps: float) -> Perturb:
    """``perturb(x, y=None, generator=None) -> clamp(x + eps G(.), 0, 1)`` with G in eval mode
    (BatchNorm running statistics, so an image's perturbation does not depend on its batch);
    ``y`` is needed by the label generator, ``generator`` seeds the noise generator's z."""

    @torch.no_grad()
    def perturb(x: torch.Tensor, y: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        with model_mode(g, "eval"):
            return adversarial(x, g(g.inputs(x, y, generator)), eps)

    return perturb


def train_generator_attack(
    model: nn.Module, generator_name: str, width: int | None, eps: float,
    x: torch.Tensor, y: torch.Tensor, *, epochs: int = 1, batch_size: int = 64,
    g_steps: int = 1, optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.9,
    weight_decay: float = 1e-5, seed: int = 0,
) -> tuple[AdvGenerator, Perturb]:
    """Train generator ``generator_name`` (g0-g3) to attack the fixed classifier ``model``.

    Args:
        model: the classifier (not modified; run in eval mode, its mode restored).
        generator_name: ``g0``, ``g1``, ``g2`` or ``g3``; width: k (None: the default).
        eps: L-inf budget on the [0, 1] scale.
        x: (N, C, H, W) training images in [0, 1] on the model's device.
        y: (N,) labels.
        epochs: passes over ``(x, y)`` (shuffled with ``seed``).
        batch_size: mini-batch size.
        g_steps: ascent steps per mini-batch.
        optimizer, lr, momentum, weight_decay: G's optimiser (momentum: Adam's beta1).
        seed: seeds G's weights, the batch order and G2's noise.

    Returns:
        The trained generator (train mode) and ``perturb`` (:func:`perturber`).
    """
    check_images(x, name="x")
    check_eps(eps, "eps", upper=1.0)
    if y.shape != (x.shape[0],):
        raise InputError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    num_classes = int(getattr(model, "num_classes", int(y.max()) + 1))
    torch.manual_seed(seed)
    g = build_generator(generator_name, x.shape[1], x.shape[-1], num_classes, width)
    g = g.to(x.device).train()
    opt = make_generator_optimizer(g, optimizer, lr, momentum, weight_decay)
    params = list(g.parameters())
    gen = torch.Generator(device=x.device).manual_seed(seed)
    with model_mode(model, "eval"):
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=gen, device=x.device)
            for i in range(0, x.shape[0], batch_size):
                xb, yb = x[order[i:i + batch_size]], y[order[i:i + batch_size]]
                inp = g.inputs(xb, yb, gen)
                for _ in range(g_steps):
                    loss = F.cross_entropy(model(adversarial(xb, g(inp), eps)), yb)
                    opt.zero_grad(set_to_none=True)
                    (-loss).backward(inputs=params)
                    opt.step()
    return g, perturber(g, eps)


def load_generator(run_dir: str | Path, device: torch.device | str = "cpu"
                   ) -> tuple[AdvGenerator, Perturb]:
    """The generator an ``adv-net`` run saved in ``run_dir`` and its ``perturb``."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / GENERATOR_CONFIG)
    try:
        g = build_generator(config["generator"], config["in_channels"], config["image_size"],
                            config["num_classes"], config["width"])
        g.load_state_dict(load_safetensors(run_dir / GENERATOR_FILE))
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"bad generator in {run_dir}: "
                              f"{str(exc).strip().splitlines()[0]}") from None
    return g.to(device).eval(), perturber(g, float(config["eps"]))


__all__ = ["load_generator", "perturber", "train_generator_attack"]
