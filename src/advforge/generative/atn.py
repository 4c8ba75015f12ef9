"""ATN / AAE (Baluja & Fischer, "Adversarial Transformation Networks", 2018), AE4DNN's baseline:
one adversarial autoencoder g per target class y*, trained with AE4DNN's Formula 1,

    loss_AAE(X) = 1/|X| sum_x phi ||x - x'||_2 + ||y' - r_alpha(y, y*)||_2            (1)

where x' = g(x), y' = softmax f(x'), y = softmax f(x) (the clean output, detached) and the
reranking r_alpha sets the target's probability to alpha times the largest one and
renormalises to a distribution (alpha = 1.5), so the network is asked for a small, targeted
change of the model's belief rather than a one-hot. ``phi="auto"`` sweeps Table II's values
and keeps the phi the AE4DNN rule prefers (most valid examples with mean L2 <= b). The
autoencoder, subset S, training and counting are AE4DNN's (:mod:`.reconstruction`), so the
comparison isolates the loss.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.errors import InputError
from advforge.generative.config import leaf
from advforge.generative.progress import Progress
from advforge.generative.reconstruction import (
    Method,
    ReconstructionConfig,
    check_grid,
    check_weight,
)
from advforge.generative.reconstruction import fit as fit_reconstruction

TABLE_II_PHIS = (0.02, 0.01, 0.005, 0.003, 0.002)


def rerank(probs: torch.Tensor, target: torch.Tensor, alpha: float = 1.5) -> torch.Tensor:
    """r_alpha(y, y*): y with y_{y*} set to alpha * max_k y_k, renormalised to sum to 1.

    Args:
        probs: (B, K) probabilities y; target: (B,) classes y*.
    Returns:
        (B, K) a distribution per row.
    """
    top = probs.max(dim=1, keepdim=True).values  # (B, 1)
    out = probs.scatter(1, target[:, None], alpha * top)
    return out / out.sum(dim=1, keepdim=True)


def aae_loss(x: torch.Tensor, x_rec: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
             clean_logits: torch.Tensor, phi: float, alpha: float = 1.5
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Formula 1 over a batch: mean of phi ||x - x'||_2 + ||y' - r_alpha(y, y*)||_2, with
    r_alpha computed on the detached clean output."""
    l2 = (x - x_rec).flatten(1).norm(dim=1)  # (B,)
    wanted = rerank(clean_logits.detach().softmax(dim=1), target, alpha)
    gap = (logits.softmax(dim=1) - wanted).norm(dim=1)  # (B,)
    return (phi * l2 + gap).mean(), {"l2": l2.mean().item(), "rerank_gap": gap.mean().item()}


@dataclasses.dataclass
class AAEObjective:
    """Formula 1 at a fixed phi (the reconstruction trainer's objective)."""

    phi: float
    alpha: float = 1.5
    needs_clean: bool = True

    def __call__(self, x, x_rec, logits, target, clean):
        return aae_loss(x, x_rec, logits, target, clean, self.phi, self.alpha)


@dataclasses.dataclass
class ATNConfig(ReconstructionConfig):
    """Hyperparameters of ``advforge train-attacker atn`` (with the shared target, max_l2,
    autoencoder and training of :class:`ReconstructionConfig`).

    Attributes:
        phi: Formula 1's weight of the L2 distance, or ``"auto"`` (sweep Table II's values).
        phi_grid: explicit phis to sweep instead; the rule picks one.
        alpha: the reranking's factor.
    """

    phi: float | str = leaf("auto", "Formula 1's weight of ||x - x'||_2, or auto: sweep "
                            "Table II's 0.02, 0.01, 0.005, 0.003, 0.002 and keep the phi with "
                            "the most adversarial examples whose mean L2 is <= max_l2")
    phi_grid: list[float] | None = leaf(None, "sweep these phis (comma-separated) instead of "
                                        "Table II's")
    alpha: float = leaf(1.5, "r_alpha: the target's probability becomes alpha x the largest")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight("phi", self.phi)
        check_grid("phi_grid", self.phi_grid)
        if not (self.alpha > 1 and math.isfinite(self.alpha)):
            raise InputError(f"alpha must be > 1, got {self.alpha}")


METHOD = Method(kind="atn", weight_name="phi",
                objective=lambda cfg, phi: AAEObjective(phi, cfg.alpha),
                context=lambda cfg, model, x, t: {},
                auto_grid=lambda cfg, context: list(TABLE_II_PHIS))


def fit(cfg: ATNConfig, target: nn.Module, train: Any, *, val: Any = None,
        run_dir: str | Path | None = None, resume: bool = False, progress: Progress = None,
        dataset: str | None = None, target_run_dir: str | Path | None = None
        ) -> dict[str, Any]:
    """Train ATN/AAE against ``target``; see :func:`advforge.generative.reconstruction.fit`."""
    return fit_reconstruction(cfg, METHOD, target, train, val=val, run_dir=run_dir,
                              resume=resume, progress=progress, dataset=dataset,
                              target_run_dir=target_run_dir)
