"""AE4DNN (Nguyen et al., "An Autoencoder-based Method for Targeted Attack on Deep Neural
Network Models"): one autoencoder g per target class y*, trained on a balanced subset S with

    loss_g(S) = 1/|S| sum_x (1 - beta)/d ||x - g(x)||^2 + beta ce(f(g(x)), y*)      (Formula 2)

(d = C*H*W, ce = -log p_{y*}); g(x) is the adversarial example. The weight beta is bounded by
Formula 3, computed over S with g at its initial weights,

    beta <= sum_x (1/d)||x - g(x)||^2 / sum_x ((1/d)||x - g(x)||^2 + ce(f(g(x)), y*)),

and ``beta="auto"`` sweeps fractions of that bound (Table I) and keeps the beta with the most
valid adversarial examples on S whose mean L2 stays <= b (``max_l2``, 6.5 as the paper).

The authors' Keras code passes the cross-entropy's arguments in swapped order, which computes
-sum_k p_k log(clip(onehot_k)) = -log(1e-7) (1 - p_{y*}) ~= 16.1 (1 - p_{y*}) rather than
-log p_{y*}. The loss here is the paper's; :func:`beta_bound` also reports the bound that
variant gives (``ce="authors"``), since it changes the figure.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advforge.errors import InputError
from advforge.generative.autoencoders import build_autoencoder
from advforge.generative.config import leaf
from advforge.generative.progress import Progress
from advforge.generative.reconstruction import (
    Method,
    ReconstructionConfig,
    check_grid,
    check_weight,
)
from advforge.generative.reconstruction import (
    fit as fit_reconstruction,
)
from advforge.utils.modes import model_mode

KERAS_EPSILON = 1e-7  # Keras clips probabilities to [1e-7, 1 - 1e-7] inside its cross-entropy
# Fractions of Formula 3's bound that beta="auto" tries: the paper's Table I spans
# 0.0005-0.006 under a bound of 0.015, i.e. 1/30 to 2/5 of it.
AUTO_FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2)


def ae4dnn_loss(x: torch.Tensor, x_rec: torch.Tensor, logits: torch.Tensor,
                target: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Formula 2 over a batch: mean of (1 - beta)/d ||x - g(x)||^2 + beta ce(f(g(x)), y*).

    Args:
        x, x_rec: (B, C, H, W) inputs and reconstructions g(x).
        logits: (B, K) f(g(x)); target: (B,) y*.
    """
    d = x[0].numel()
    sq = (x - x_rec).flatten(1).pow(2).sum(dim=1)  # (B,) ||x - g(x)||^2
    ce = F.cross_entropy(logits, target, reduction="none")  # (B,) -log p_{y*}
    loss = ((1 - beta) / d * sq + beta * ce).mean()
    return loss, {"mse": (sq / d).mean().item(), "ce": ce.mean().item()}


@dataclasses.dataclass
class AE4DNNObjective:
    """Formula 2 at a fixed beta (the reconstruction trainer's objective)."""

    beta: float
    needs_clean: bool = False

    def __call__(self, x, x_rec, logits, target, clean):
        return ae4dnn_loss(x, x_rec, logits, target, self.beta)


def authors_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The authors' swapped-argument cross-entropy: -sum_k p_k log clip(onehot_k, 1e-7, 1)
    = -log(1e-7) (1 - p_target) (per example, (B,))."""
    p_t = logits.softmax(dim=1).gather(1, target[:, None]).squeeze(1)
    return -math.log(KERAS_EPSILON) * (1 - p_t)


@torch.no_grad()
def bound_terms(model: nn.Module, g: nn.Module, x: torch.Tensor, target: int, *,
                batch: int = 500) -> dict[str, float]:
    """Formula 3's sums over S (``x``) with ``g`` as it is: ``mse`` = sum (1/d)||x - g(x)||^2,
    ``paper`` = sum -log p_t(g(x)), ``authors`` = the authors' code's cross-entropy summed."""
    d = x[0].numel()
    sums = {"mse": 0.0, "paper": 0.0, "authors": 0.0}
    with model_mode(g, "eval"), model_mode(model, "eval"):
        for i in range(0, x.shape[0], batch):
            xb = x[i:i + batch]
            rec = g(xb)
            logits = model(rec)
            t = torch.full((xb.shape[0],), target, device=x.device)
            sums["mse"] += float((xb - rec).flatten(1).pow(2).sum(dim=1).div(d).sum())
            sums["paper"] += float(F.cross_entropy(logits, t, reduction="sum"))
            sums["authors"] += float(authors_ce(logits, t).sum())
    return sums


def beta_bound(model: nn.Module, g: nn.Module, x: torch.Tensor, target: int, *,
               ce: str = "paper", batch: int = 500) -> float:
    """Formula 3's upper bound on beta over S (``x``) with ``g`` as it is (its initial
    weights, in the paper); ``ce="authors"`` uses the authors' code's cross-entropy."""
    if ce not in ("paper", "authors"):
        raise InputError(f"ce must be paper or authors, got {ce!r}")
    sums = bound_terms(model, g, x, target, batch=batch)
    return sums["mse"] / (sums["mse"] + sums[ce])


def bound_over_inits(cfg: AE4DNNConfig, model: nn.Module, x: torch.Tensor,
                     target: int, *, start_at_mean: bool = True) -> dict[str, Any]:
    """Formula 3 for ``cfg.bound_inits`` initialisations of g (seeds seed, seed+1, ...):
    the paper's 0.015 +- 0.002, for its cross-entropy and the authors' code's (one pass
    over S per initialisation serves both).

    ``start_at_mean``: g's output starts at S's mean pixel, as the trainer starts it
    (:meth:`~advforge.generative.autoencoders.Autoencoder.init_output`); False keeps the
    layer's default bias (a sigmoid near 0.5), whose larger initial MSE raises the bound."""
    values: dict[str, list[float]] = {"paper": [], "authors": []}
    for k in range(cfg.bound_inits):
        torch.manual_seed(cfg.training.seed + 1000 * k + target)
        g = build_autoencoder(cfg.autoencoder.arch, x.shape[1], x.shape[2],
                              ch=cfg.autoencoder.ch).to(x.device)
        if start_at_mean:
            g.init_output(float(x.mean()))
        sums = bound_terms(model, g, x, target)
        for ce, vals in values.items():
            vals.append(sums["mse"] / (sums["mse"] + sums[ce]))
    out: dict[str, Any] = {}
    for ce, vals in values.items():
        mean = sum(vals) / len(vals)
        std = (sum((v - mean) ** 2 for v in vals) / max(len(vals) - 1, 1)) ** 0.5
        out[ce] = {"mean": mean, "std": std, "values": vals}
    return out


def _context(cfg: AE4DNNConfig, model: nn.Module, x: torch.Tensor, target: int
             ) -> dict[str, Any]:
    """Formula 3's bound over S, recorded with every run."""
    return {"beta_bound": bound_over_inits(cfg, model, x, target)}


def _auto_grid(cfg: AE4DNNConfig, context: dict[str, Any]) -> list[float]:
    """beta="auto": fractions of Formula 3's mean bound (``AUTO_FRACTIONS``)."""
    top = context["beta_bound"]["paper"]["mean"]
    return [float(f"{f * top:.3g}") for f in AUTO_FRACTIONS]


@dataclasses.dataclass
class AE4DNNConfig(ReconstructionConfig):
    """Hyperparameters of ``advforge train-attacker ae4dnn`` (with the shared target, max_l2,
    autoencoder and training of :class:`ReconstructionConfig`).

    Attributes:
        beta: Formula 2's weight, or ``"auto"`` (sweep fractions of Formula 3's bound).
        beta_grid: explicit betas to sweep instead (Table I); the rule picks one.
        bound_inits: initialisations of g over which Formula 3 is reported.
    """

    beta: float | str = leaf("auto", "Formula 2's weight of the cross-entropy, or auto: sweep "
                             "fractions of Formula 3's bound and keep the beta with the most "
                             "adversarial examples whose mean L2 is <= max_l2")
    beta_grid: list[float] | None = leaf(None, "sweep these betas (comma-separated) instead "
                                         "of auto's")
    bound_inits: int = leaf(5, "initialisations of g over which Formula 3's bound is reported")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight("beta", self.beta, upper=1.0)
        check_grid("beta_grid", self.beta_grid, upper=1.0)
        if isinstance(self.bound_inits, bool) or self.bound_inits < 1:
            raise InputError(f"bound_inits must be >= 1, got {self.bound_inits}")


METHOD = Method(kind="ae4dnn", weight_name="beta",
                objective=lambda cfg, beta: AE4DNNObjective(beta), context=_context,
                auto_grid=_auto_grid)


def fit(cfg: AE4DNNConfig, target: nn.Module, train: Any, *, val: Any = None,
        run_dir: str | Path | None = None, resume: bool = False, progress: Progress = None,
        dataset: str | None = None, target_run_dir: str | Path | None = None
        ) -> dict[str, Any]:
    """Train AE4DNN against ``target``; see :func:`advforge.generative.reconstruction.fit`."""
    return fit_reconstruction(cfg, METHOD, target, train, val=val, run_dir=run_dir,
                              resume=resume, progress=progress, dataset=dataset,
                              target_run_dir=target_run_dir)
