"""The adversarial-networks training step of Wang & Yu (the minimax of Eq. 4).

Per mini-batch (Sec. 3.2, 4.1 and the authors' training script):

1. a G update: ``g_steps`` gradient-ascent steps of G on ``lam * CE(D(x + eps G), y)`` on
   the same mini-batch (only the adversarial term of F depends on phi), D in eval mode;
2. on every ``g_updates``-th mini-batch (counted over the whole run), after the G update, one
   step of D on the regularised objective of Eq. 8 (:mod:`.hvp`), D in train mode.

So with the MNIST defaults (5, 5) D takes one step per 5 mini-batches and G takes 25 steps
per D step, as in the authors' script (``batch_idx % 5 == 0``).

Under ``torchrun`` every rank sees its own shard: G's gradients, and the vector v of Eq. 9,
are averaged over the ranks before they are used, so G's parameters stay identical on every
rank and the finite difference approximates the Hessian-vector product of the global F.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from advforge.defenses.advnet.hvp import phi_gradient, regularized_loss, shifted_output
from advforge.defenses.advnet.nets import AdvGenerator, adversarial, build_generator
from advforge.errors import CheckpointError
from advforge.training import Objective, StepContext
from advforge.training.state import optimizer_from_tensors, optimizer_to_tensors
from advforge.utils.checkpoint import atomic_write_json, save_safetensors
from advforge.utils.distributed import DistInfo, all_reduce_sum
from advforge.utils.modes import model_mode

GENERATOR_FILE = "generator.safetensors"
GENERATOR_CONFIG = "generator.json"


@dataclasses.dataclass
class AdvNetPlan:
    """Everything the objective needs, resolved from the settings and the data.

    Attributes:
        settings: the defense's settings (recorded; a resume must match them).
        generator: ``g0`` .. ``g3``; width: k.
        in_channels, image_size, num_classes: the data's shape.
        eps, lam, gamma, h: Eq. 4's budget and lambda, Eq. 8's gamma, Eq. 9's h.
        g_steps, g_updates: the schedule (module docstring).
        g_optimizer, g_lr, g_momentum, g_weight_decay: G's optimiser (momentum is Adam's
            beta1 for ``adam``).
        seed: seeds G's initial weights.
        out: run directory, where G is also saved (None: not saved).
    """

    settings: dict[str, Any]
    generator: str
    width: int
    in_channels: int
    image_size: int
    num_classes: int
    eps: float
    lam: float
    gamma: float
    h: float
    g_steps: int
    g_updates: int
    g_optimizer: str
    g_lr: float
    g_momentum: float
    g_weight_decay: float
    seed: int
    out: str | None


def make_generator_optimizer(g: AdvGenerator, name: str, lr: float, momentum: float,
                             weight_decay: float) -> torch.optim.Optimizer:
    """SGD with momentum, or Adam with beta1 = ``momentum`` (the paper's CIFAR setting is
    Adam(0.002, beta1 0.5), MNIST's SGD(0.01, momentum 0.9))."""
    if name == "adam":
        return torch.optim.Adam(g.parameters(), lr=lr, betas=(momentum, 0.999),
                                weight_decay=weight_decay)
    return torch.optim.SGD(g.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def average_gradients(params: list[torch.Tensor], info: DistInfo) -> None:
    """Replace each ``.grad`` by its mean over the ranks (no-op in one process)."""
    if not info.distributed:
        return
    for p in params:
        if p.grad is not None:
            p.grad.copy_(all_reduce_sum(p.grad, info) / info.world_size)


class AdvNetObjective(Objective):
    """One mini-batch of the adversarial networks game (see the module docstring)."""

    name = "adv-net"

    def __init__(self, plan: AdvNetPlan) -> None:
        self.plan = plan
        self.g: AdvGenerator | None = None
        self.g_opt: torch.optim.Optimizer | None = None
        self.info = DistInfo()

    def setup(self, module: torch.nn.Module, info: DistInfo) -> None:
        p = self.plan
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p.seed + 7919)  # G's init, apart from the classifier's stream
            g = build_generator(p.generator, p.in_channels, p.image_size, p.num_classes,
                                p.width)
        self.g = g.to(info.device).train()
        self.g_opt = make_generator_optimizer(self.g, p.g_optimizer, p.g_lr, p.g_momentum,
                                              p.g_weight_decay)
        self.info = info

    def step(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        inp = self.g.inputs(x, y, ctx.generator)  # z is drawn once per mini-batch
        adv_loss = self.g_update(ctx, inp, x, y)
        if (ctx.epoch * ctx.batches + ctx.batch) % self.plan.g_updates == 0:
            result = self.d_step(ctx, inp, x, y)
        else:
            with torch.no_grad(), model_mode(ctx.module, "eval"):
                logits = ctx.module(x)
            objective = F.cross_entropy(logits, y) + self.plan.lam * adv_loss
            result = objective * y.numel(), (logits.argmax(1) == y).sum()
        if ctx.batch == ctx.batches - 1 and ctx.info.is_main and self.plan.out is not None:
            save_generator(self.g, self.plan.out, self.plan.eps)
        return result

    def g_update(self, ctx: StepContext, inp: torch.Tensor, x: torch.Tensor,
                 y: torch.Tensor) -> torch.Tensor:
        """``g_steps`` ascent steps of G on this batch against D in eval mode; returns the
        adversarial loss before the last step (detached)."""
        params = list(self.g.parameters())
        with model_mode(ctx.module, "eval"):
            for _ in range(self.plan.g_steps):
                loss = F.cross_entropy(ctx.module(adversarial(x, self.g(inp), self.plan.eps)), y)
                self.g_opt.zero_grad(set_to_none=True)
                (-self.plan.lam * loss).backward(inputs=params)  # ascent; D's grads untouched
                average_gradients(params, ctx.info)
                self.g_opt.step()
        return loss.detach()

    def d_step(self, ctx: StepContext, inp: torch.Tensor, x: torch.Tensor, y: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of D on the surrogate of Eqs. 8-9 (:mod:`.hvp`), D in train mode.

        v = grad_phi F is taken with D in eval mode: it is then exactly G's ascent direction
        (Sec. 3.1: "phi_k + h v is exactly a gradient step for G") and its computation
        neither updates BatchNorm statistics nor draws dropout masks."""
        p = self.plan
        with model_mode(ctx.module, "eval"):
            v, out = phi_gradient(ctx.module, self.g, inp, x, y, p.eps, p.lam)
        parts = [x, adversarial(x, out, p.eps)]
        if p.gamma > 0:
            v = [all_reduce_sum(t, ctx.info) / ctx.info.world_size for t in v]
            parts.append(adversarial(x, shifted_output(self.g, inp, v, p.h), p.eps))
        logits = ctx.model(torch.cat(parts))  # (2B or 3B, K): the one forward DDP sees
        loss, objective = regularized_loss(logits, y, p.lam, p.gamma, p.h)
        ctx.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ctx.optimizer.step()
        b = y.shape[0]
        return objective.detach() * b, (logits[:b].detach().argmax(1) == y).sum()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.plan.settings}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"g.{k}": v for k, v in self.g.state_dict().items()}
        tensors.update(optimizer_to_tensors(self.g_opt, prefix="gopt.")[0])
        return tensors

    def state_doc(self) -> dict[str, Any]:
        return {"g_optimizer": optimizer_to_tensors(self.g_opt, prefix="gopt.")[1]}

    def load_state(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        if "g_optimizer" not in doc:
            raise CheckpointError("training state has no adv-net generator optimizer state")
        g_state = {k[2:]: v for k, v in tensors.items() if k.startswith("g.")}
        try:
            self.g.load_state_dict(g_state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError("training state does not match the adv-net generator: "
                                  f"{str(exc).strip().splitlines()[0]}") from None
        optimizer_from_tensors(self.g_opt, tensors, doc["g_optimizer"], prefix="gopt.")


def save_generator(g: AdvGenerator, out: str | Path, eps: float) -> None:
    """Write G's weights (``generator.safetensors``) and how to rebuild it
    (``generator.json``) into the run directory ``out``, each atomically."""
    out = Path(out)
    save_safetensors(out / GENERATOR_FILE, g.state_dict(),
                     metadata={"config": json.dumps({**g.config(), "eps": eps})})
    atomic_write_json(out / GENERATOR_CONFIG, {**g.config(), "eps": eps})
