"""Black-box mode by dynamic distillation (AI-GAN Sec. V-D).

The target is reachable only through :class:`QueryOnly`: images in, detached probabilities
out, under ``torch.no_grad()``. A local model f_d (the paper's: Model C for 28x28 data,
ResNet20 for 32x32; by default chosen from candidates by queries, :mod:`.substitute`)
distils those probabilities on clean and generated images and is updated after every AI-GAN
update ("similar to adversarial training, f_d is updated every time after updating AI-GAN");
the generator attacks f_d in white-box fashion. The distillation loss is KL(p_target ||
p_local), i.e. soft cross-entropy up to the target's (constant) entropy.

Optionally (``query_samples > 0``, off by default: not in the paper) the generator also gets
an estimate of the *target's* own gradient, from queries alone: :func:`query_gradient` is the
antithetic NES estimator of Ilyas et al. (2018, "Black-box Adversarial Attacks with Limited
Queries and Information") applied to the target's C&W margin at each generated image. The
substitute's exact gradient only points at the weaknesses f_d shares with the target; the
estimate, noisy per image but unbiased and averaged over every image G forges, points at
the target's own.

With a temperature T > 1 both distributions are softened first, as in Hinton et al. (2015):
log p_target equals the target's logits up to a per-image constant, so softmax(log p / T)
is exactly the tempered softmax of the logits we cannot see. A near one-hot p_target
carries almost nothing about the runner-up classes at T = 1; the tempered one keeps their
order and gaps, which is what a targeted attack on the substitute needs to get right.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advforge.attacks import create as create_attack
from advforge.attacks.base import Attack
from advforge.attacks.losses import margin
from advforge.generative.data import iterate_batches
from advforge.generative.parallel import average_gradients
from advforge.generative.progress import ProgressReporter
from advforge.utils.modes import model_mode

log = logging.getLogger(__name__)


class QueryOnly(nn.Module):
    """A target model that can be queried for output probabilities and nothing else.

    The target is kept outside this module's tree (``parameters()`` is empty, ``state_dict()``
    holds nothing of it), inputs are detached and the query runs under ``torch.no_grad()`` in
    eval mode, so no graph through the target can ever exist. ``queries`` counts the images
    sent, the usual cost measure of a black-box attack.
    """

    def __init__(self, target: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_target", target)  # not registered as a submodule
        self.num_classes = getattr(target, "num_classes", None)
        self.in_channels = getattr(target, "in_channels", None)
        self.queries = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K) probabilities
        with torch.no_grad(), model_mode(self._target, "eval"):
            probs = F.softmax(self._target(x.detach()), dim=1)
        self.queries += int(x.shape[0])
        return probs.detach()


def query_all(oracle: QueryOnly, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The target's probabilities (N, K) on every image of ``x``, queried once in chunks."""
    return torch.cat([oracle(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def query_gradient(
    oracle: QueryOnly, x: torch.Tensor, t: torch.Tensor, *, samples: int, sigma: float,
    kappa: float, rng: torch.Generator,
) -> torch.Tensor:
    """NES estimate of the gradient of the target's targeted C&W margin at ``x``, from queries.

    For each image, ``samples`` Gaussian directions u_j (antithetic pairs: 2 * samples
    queries) give ``g = 1/(2 sigma samples) sum_j (m(x + sigma u_j) - m(x - sigma u_j)) u_j``
    (Ilyas et al. 2018, Eq. 3 with antithetic sampling), whose mean is the gradient of the
    Gaussian-smoothed margin. The margin max(max_{i != t} Z_i - Z_t, -kappa) needs only
    log-probabilities: log p_i - log p_j = Z_i - Z_j, so it is exactly the logit margin the
    substitute's term uses. A pair already kappa logits past its boundary on both sides
    gives 0, as the capped margin does. Query points are clipped to [0, 1] (what a deployed
    model accepts).

    Args:
        oracle: the query-only target (counts the queries).
        x: (B, C, H, W) images in [0, 1] (detached; no graph is built).
        t: (B,) target classes.
        samples: antithetic direction pairs per image.
        sigma: finite-difference step on the [0, 1] pixel scale.
        kappa: the margin's confidence cap, in logits.
        rng: the random directions' generator.

    Returns:
        (B, C, H, W) gradient estimate, detached.
    """
    with torch.no_grad():
        u = torch.randn((samples, *x.shape), generator=rng, device=x.device, dtype=x.dtype)
        points = torch.cat([x + sigma * u, x - sigma * u]).clamp(0.0, 1.0)  # (2q, B, C, H, W)
        probs = oracle(points.flatten(0, 1))  # (2qB, K)
        log_p = torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))
        tt = t.repeat(2 * samples)
        m = margin(log_p, tt, tt, kappa=kappa).view(2, samples, x.shape[0])  # (2, q, B)
        slope = (m[0] - m[1]) / (2 * sigma)  # (q, B) directional derivatives along u_j
        return (slope[:, :, None, None, None] * u).mean(0)


def probe_attack(eps: float, steps: int, kappa: float) -> Attack:
    """The targeted PGD whose examples on f_d are queried and distilled (``distill_probe_steps``).

    Papernot et al. (2017, "Practical Black-Box Attacks against Machine Learning") grow a
    substitute's training set with x + lambda * sign(grad f_sub(x)), so the substitute learns
    the target's answer in the directions its own gradient points at. Here the step is a
    random-start PGD with the C&W margin towards the G step's targets (kappa as G's term, Madry
    et al.'s step 2.5 * eps / steps), at G's eps: exactly where a generator that follows f_d's
    gradient is led next, so f_d's mistakes there are corrected by the target's answer.
    """
    return create_attack("pgd", eps=eps, steps=steps, step_size=2.5 * eps / steps,
                         random_start=True, loss="cw", kappa=kappa)


def make_local_model(
    arch: str | None,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> nn.Module:
    """The substitute f_d from the model registry; ``arch=None`` picks the paper's choice:
    Model C for images up to 28x28 (MNIST), ResNet20 above (CIFAR)."""
    from advforge import models

    arch = arch or ("model_c" if image_size <= 28 else "resnet20")
    return models.create(arch, num_classes=num_classes, in_channels=in_channels,
                         input_size=image_size, mean=list(mean), std=list(std))


def distillation_loss(logits: torch.Tensor, p_target: torch.Tensor, temperature: float,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * KL(softmax(log p_target / T) || softmax(logits / T)), mean over the batch.

    ``logits`` (B, K) of the local model, ``p_target`` (B, K) the target's probabilities,
    ``weights`` (B,) optional per-image weights (then a weighted mean, sum w KL / sum w).
    The T^2 factor keeps the gradient's scale independent of T (Hinton et al., 2015).
    Probabilities that underflowed to 0 are floored at the smallest normal float, so their
    log stays finite and their tempered weight is still negligible.
    """
    if temperature == 1.0:
        soft_target, log_q = p_target, F.log_softmax(logits, dim=1)
    else:
        tiny = torch.finfo(p_target.dtype).tiny
        soft_target = F.softmax(torch.log(p_target.clamp_min(tiny)) / temperature, dim=1)
        log_q = F.log_softmax(logits / temperature, dim=1)
    kl = F.kl_div(log_q, soft_target, reduction="none").sum(1)  # (B,)
    kl = kl if weights is None else kl * weights / weights.mean()
    return temperature ** 2 * kl.mean()


class Distiller:
    """Keeps the local model f_d close to the target on the images the attack produces.

    Args:
        oracle: the query-only target.
        local: the substitute f_d (trained in place).
        lr: Adam learning rate of f_d.
        temperature: softmax temperature of the distillation loss.
        miss_weight: weight of a generated image the target was not fooled by (the target's
            answer is its true class, not the attack's target), relative to 1 for every other
            image. Each such image is a lesson in robustness; < 1 teaches f_d less of it
            (measured in docs/aigan.md).
    """

    def __init__(
        self, oracle: QueryOnly, local: nn.Module, *, lr: float, temperature: float = 1.0,
        miss_weight: float = 1.0,
    ) -> None:
        self.oracle, self.local = oracle, local
        self.temperature, self.miss_weight = temperature, miss_weight
        self.optimizer = torch.optim.Adam(local.parameters(), lr=lr)

    def step(self, x: torch.Tensor, targets: torch.Tensor | None = None,
             answers: torch.Tensor | None = None) -> dict[str, float]:
        """One distillation update on the images ``x`` (B, C, H, W); returns loss, agreement.

        ``targets`` (B,) are the attack's target classes of generated images and -1 for clean
        ones; with ``miss_weight != 1`` they mark the misses to down-weight. ``answers``
        (B, K) are the target's probabilities on ``x`` when already queried (else queried)."""
        # (B, K), detached, no graph through the target
        p_target = self.oracle(x) if answers is None else answers.detach()
        weights = None
        if targets is not None and self.miss_weight != 1.0:
            miss = (targets >= 0) & (p_target.argmax(1) != targets)
            weights = torch.where(miss, self.miss_weight, 1.0).to(p_target.dtype)
        with model_mode(self.local, "train"):
            logits = self.local(x.detach())
        loss = distillation_loss(logits, p_target, self.temperature, weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.local.parameters())  # data parallel (identity in one process)
        self.optimizer.step()
        agree = (logits.argmax(1) == p_target.argmax(1)).float().mean()
        return {"distill_kl": loss.item(), "distill_agree": agree.item()}

    def warmup(
        self, x: torch.Tensor, *, epochs: int, batch_size: int, rng: torch.Generator,
        progress: Any = None, answers: torch.Tensor | None = None,
    ) -> list[float]:
        """Distil on clean training images before the GAN starts, so the generator's first
        updates attack a model that already mimics the target (a static-distillation start;
        the paper leaves f_d's initialisation open). ``answers`` (N, K): the target's
        probabilities on ``x`` if already queried (:func:`query_all`), else each batch is."""
        index = torch.arange(x.shape[0], device=x.device)
        bar = ProgressReporter(progress, epochs * math.ceil(x.shape[0] / batch_size), "distil")
        history = []
        for epoch in range(epochs):
            stats = []
            for xb, ib in iterate_batches(x, index, batch_size, rng):
                stats.append(self.step(xb, answers=None if answers is None else answers[ib]))
                bar.update({"phase": "distill", "epoch": epoch, **stats[-1]})
            history.append(sum(s["distill_kl"] for s in stats) / max(len(stats), 1))
            log.info("distillation warm-up epoch %d/%d: KL %.4f, agreement %.3f", epoch + 1,
                     epochs, history[-1], sum(s["distill_agree"] for s in stats) / len(stats))
        bar.close()
        return history
