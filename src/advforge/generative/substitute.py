"""Choosing black-box mode's substitute architecture from the target's answers alone.

The paper distils a fixed local model (Model C for MNIST). What a substitute passes on to
the generator is its gradient, and on mnist5k the architecture, not the distillation,
decides how much of that gradient points at the target's own weaknesses (docs/aigan.md,
black-box mode). An attacker who does not know the target's architecture can still
measure which candidate's gradient transfers: ``local_arch="auto"``
(:func:`select_substitute`) distils every candidate on the same clean images (the target is
queried once per image, the answers shared), crafts targeted PGD-20 examples with G's C&W
margin on each, and keeps the candidate whose examples move the *target* furthest towards
the intended class: the highest mean targeted C&W margin on the target, read from its
answers (:class:`TransferScore`; the share of examples that reach the target class cannot
tell the candidates apart at a small budget). That is Papernot et
al. (2017)'s observation that substitutes of different families transfer differently,
turned into a query-only model selection; the score is what G's training needs, how far the
substitute's gradient lowers G's own target term on the target.

Cost: each candidate's warm-up distillation (the winner's is kept as the run's warm-up) and
``score_images`` queries per candidate.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from advforge.attacks import create as create_attack
from advforge.attacks.losses import margin
from advforge.generative.distill import Distiller, QueryOnly, query_all
from advforge.generative.targets import sample_targets
from advforge.utils.modes import model_mode

log = logging.getLogger(__name__)

AUTO = "auto"
# Candidates by input size, the paper's choice first (ties keep it). Small, fast models only:
# each is distilled for the warm-up's epochs before the generator starts.
SMALL_IMAGE_CANDIDATES = ("model_c", "model_a", "model_b", "lenet5")  # <= 28 px (MNIST)
LARGE_IMAGE_CANDIDATES = ("resnet20", "model_c", "model_b", "lenet5")  # 32 px (CIFAR, SVHN)
SCORE_STEPS = 20  # PGD steps of the transfer score


def candidate_archs(image_size: int) -> tuple[str, ...]:
    """The registry architectures ``auto`` chooses among for images of this size."""
    return SMALL_IMAGE_CANDIDATES if image_size <= 28 else LARGE_IMAGE_CANDIDATES


@dataclasses.dataclass
class SubstituteChoice:
    """The chosen architecture, its distilled model and optimizer, and every candidate's
    score (:attr:`TransferScore.margin`, the ranking), targeted transfer success and warm-up
    history."""

    arch: str
    distiller: Distiller
    scores: dict[str, float]
    success: dict[str, float]
    warmup_kl: dict[str, list[float]]
    queries: int
    seconds: float

    def record(self) -> dict[str, object]:
        """What a run's metadata keeps of the selection (JSON-able)."""
        return {"arch": self.arch, "scores": self.scores, "success": self.success,
                "warmup_kl": self.warmup_kl,
                "queries": self.queries, "seconds": self.seconds}


@dataclasses.dataclass(frozen=True)
class TransferScore:
    """How far a candidate's targeted examples move the target towards their targets.

    ``margin`` ranks the candidates: the mean over examples of the target's targeted C&W margin
    min(Z_t - max_{j != t} Z_j, kappa), read from its answers (log-probability gaps are logit
    gaps), i.e. minus G's own target term (Eq. 4 with G's kappa) measured on the target.
    ``success`` is the share the target classifies as their target (reported beside it).
    """

    margin: float
    success: float


def transfer_score(
    oracle: QueryOnly, local: nn.Module, x: torch.Tensor, labels: torch.Tensor,
    targets: torch.Tensor, *, eps: float, kappa: float, generator: torch.Generator,
) -> TransferScore:
    """Targeted PGD-20 examples crafted on ``local`` (C&W margin, kappa as G's term, random
    start, Madry et al.'s step 2.5 * eps / steps), judged by the target.

    Why the margin ranks and not the success: at a small budget targeted examples rarely
    transfer from any candidate, so the share that do is a coin count that cannot tell the
    candidates apart, while the margin also counts the examples that moved the target part of
    the way, which is what G's gradient steps build on (figures in docs/aigan.md).
    """
    attack = create_attack("pgd", eps=eps, steps=SCORE_STEPS, step_size=2.5 * eps / SCORE_STEPS,
                           random_start=True, loss="cw", kappa=kappa)
    with model_mode(local, "eval"):
        x_adv = attack(local, x, labels, target=targets, generator=generator)
    probs = query_all(oracle, x_adv)
    log_probs = probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
    # losses.margin is what an attack minimises (>= -kappa); the score is its negation
    gap = -margin(log_probs, labels, targets, kappa=kappa)
    return TransferScore(margin=gap.mean().item(),
                         success=(probs.argmax(1) == targets).float().mean().item())


def select_substitute(
    oracle: QueryOnly,
    x: torch.Tensor,
    *,
    candidates: Sequence[str],
    build: Callable[[str], nn.Module],
    make_distiller: Callable[[nn.Module], Distiller],
    epochs: int,
    batch_size: int,
    eps: float,
    kappa: float,
    seed: int,
    score_images: int = 2048,
) -> SubstituteChoice:
    """Distil each candidate on ``x`` and keep the one whose examples transfer best.

    Args:
        oracle: the query-only target (its ``queries`` count grows by N + the score images
            per candidate).
        x: (N, C, H, W) the attacker's clean images in [0, 1].
        candidates: registry architecture names, in order of preference on ties.
        build: a fresh, untrained model of an architecture.
        make_distiller: the run's distiller (optimizer, temperature) around a model.
        epochs: distillation epochs per candidate (the run's warm-up; at least 1).
        batch_size: distillation batch.
        eps, kappa: the run's L-inf budget and C&W margin cap, used by the score's PGD.
        seed: seeds each candidate's initialisation, batch order and the score's targets, the
            same for every candidate so that only the architecture differs.
        score_images: images (the first of ``x``) the transfer score is measured on.

    Returns:
        The winner with its warmed-up distiller, and every candidate's score.
    """
    if not candidates:
        raise ValueError("select_substitute needs at least one candidate")
    start, q0 = time.perf_counter(), oracle.queries
    answers = query_all(oracle, x)  # (N, K): one query per image, shared by every candidate
    xs = x[:score_images]
    labels = answers[: xs.shape[0]].argmax(1)  # the target's own answers, not ground truth
    g = torch.Generator(device=x.device).manual_seed(seed)
    targets = sample_targets(labels, answers.shape[1], g)
    scores: dict[str, float] = {}
    success: dict[str, float] = {}
    warmup_kl: dict[str, list[float]] = {}
    best: tuple[float, Distiller] | None = None
    best_arch = ""
    for arch in candidates:
        torch.manual_seed(seed)  # same initialisation stream for every candidate
        distiller = make_distiller(build(arch))
        warmup_kl[arch] = distiller.warmup(
            x, epochs=max(1, epochs), batch_size=batch_size, answers=answers,
            rng=torch.Generator(device=x.device).manual_seed(seed))
        measured = transfer_score(
            oracle, distiller.local, xs, labels, targets, eps=eps, kappa=kappa,
            generator=torch.Generator(device=x.device).manual_seed(seed))
        scores[arch], success[arch] = measured.margin, measured.success
        log.info("substitute %s: target margin %.3f, targeted transfer %.3f on %d images",
                 arch, measured.margin, measured.success, xs.shape[0])
        if best is None or scores[arch] > best[0]:
            best, best_arch = (scores[arch], distiller), arch
    assert best is not None
    return SubstituteChoice(arch=best_arch, distiller=best[1], scores=scores, success=success,
                            warmup_kl=warmup_kl, queries=oracle.queries - q0,
                            seconds=time.perf_counter() - start)
