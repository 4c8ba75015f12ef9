"""Algorithm 2 of Shi, Shu, Zhu & Chen (2020): the adversarial dataset.

1. For each correctly classified image, the image-level FI of ``f = -log p_y`` (Eq. 1 with
   omega the whole image; it equals ``(1 - p_y) / p_y`` when the logit Jacobian has full
   rank, docs/influence.md).
2. Keep the images with ``FI >= FI_img`` and ``P(y_target | x) >= P_target``.
3. Attack each kept image with Algorithm 1 (``fi_pso``) towards ``y_target``, perturbing the
   pixels whose pixel-level FI for ``f = -log p_target`` (Eq. 5) is at least ``FI_pixel``.

The set holds the attacks that met their requirement (predicted as ``y_target``, within the
L0 budget), each with its TRUE label: the examples the fine-tuned model must get right.

``y_target`` defaults, per true class, to the class that class is most often misclassified as
(Sec. 3.2, read off the confusion matrix of Fig. 8, :func:`confusion_targets`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from advforge.attacks.fi_pso import FiPSO
from advforge.defenses.influence.progress import SearchProgress
from advforge.errors import InputError
from advforge.influence import influence
from advforge.utils.modes import model_mode
from advforge.utils.validate import check_images, check_labels

NO_CONFUSION = -1  # confusion_targets' entry for a class the model never confuses


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N,) predicted classes of ``model`` on ``x`` in eval mode (mode restored)."""
    with model_mode(model, "eval"):
        return torch.cat([model(x[i : i + batch_size]).argmax(1)
                          for i in range(0, x.shape[0], batch_size)])


def confusion_targets(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per true class, the class it is most often misclassified as.

    Args:
        pred: (N,) predicted classes.
        y: (N,) true classes.
        num_classes: K.

    Returns:
        (K,) long: entry k is the off-diagonal argmax of row k of the confusion matrix; a tie
        goes to the smallest class index; :data:`NO_CONFUSION` (-1) when no image of class k
        is misclassified (the caller then falls back to each image's runner-up class).
    """
    counts = torch.zeros(num_classes, num_classes, dtype=torch.long)
    counts.index_put_((y.cpu().long(), pred.cpu().long()), torch.ones_like(y.cpu().long()),
                      accumulate=True)
    counts.fill_diagonal_(-1)
    best = counts.argmax(dim=1)  # first maximum: the smallest index wins a tie
    return torch.where(counts.max(dim=1).values > 0, best, torch.full_like(best, NO_CONFUSION))


@dataclasses.dataclass
class Selection:
    """Algorithm 2, steps 1-2, per image of the input (all (N,) tensors on the CPU).

    Attributes:
        correct: classified as its true label.
        fi: image-level FI of ``-log p_y``.
        target: y_target (most-confused class of the true class, else the runner-up).
        p_target: P(y_target | x).
        passed_fi: ``correct`` and ``fi >= FI_img``.
        passed_p: ``correct`` and ``p_target >= P_target``.
        selected: both thresholds passed (the set X~).
    """

    correct: torch.Tensor
    fi: torch.Tensor
    target: torch.Tensor
    p_target: torch.Tensor
    passed_fi: torch.Tensor
    passed_p: torch.Tensor
    selected: torch.Tensor


def select_vulnerable(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, fi_img: float,
                      p_target: float, class_targets: torch.Tensor) -> Selection:
    """Algorithm 2, steps 1-2: which images are attacked and towards which class.

    Args:
        model: the classifier (its mode is restored).
        x: (N, C, H, W) images in [0, 1]; y: (N,) true labels.
        fi_img: FI_img. p_target: P_target.
        class_targets: (K,) y_target per true class, -1 for the runner-up class.
    """
    fi = influence(model, x, y)  # f = -log p_y
    probs = fi.probs.double().cpu()
    y = y.cpu().long()
    correct = probs.argmax(1) == y
    runner_up = probs.scatter(1, y[:, None], -1.0).argmax(1)
    target = class_targets.cpu().long()[y]
    target = torch.where(target == NO_CONFUSION, runner_up, target)
    p_t = probs.gather(1, target[:, None]).squeeze(1)
    image = fi.image.double().cpu()
    passed_fi = correct & (image >= fi_img)
    passed_p = correct & (p_t >= p_target)
    return Selection(correct=correct, fi=image, target=target, p_target=p_t,
                     passed_fi=passed_fi, passed_p=passed_p, selected=passed_fi & passed_p)


def vulnerable_pixels(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      target: torch.Tensor, fi_pixel: float) -> list[tuple[int, ...]]:
    """Algorithm 2, step 3: per image, the flattened C*H*W components whose pixel-level FI
    for ``f = -log p_target`` (Eq. 5) is at least ``fi_pixel``, in index order."""
    return _rows(vulnerable_mask(model, x, y, target, fi_pixel))


def vulnerable_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    target: torch.Tensor, fi_pixel: float) -> torch.Tensor:
    """:func:`vulnerable_pixels` as an (N, C*H*W) bool mask on the CPU."""
    if x.shape[0] == 0:
        return torch.zeros(0, x.shape[1:].numel(), dtype=torch.bool)
    pixel = influence(model, x, y, target=target.to(x.device)).pixel.flatten(1)
    return (pixel >= fi_pixel).cpu()


def _rows(mask: torch.Tensor) -> list[tuple[int, ...]]:
    """Each row's set components, in index order (fi_pso's ``indices``)."""
    return [tuple(row.nonzero().flatten().tolist()) for row in mask.cpu()]


@dataclasses.dataclass
class AdversarialSet:
    """Algorithm 2's output on one split.

    Attributes:
        x: (M, C, H, W) the successful fi_pso examples.
        y: (M,) their true labels.
        index: (M,) the row of the split each example was made from (its clean source).
        info: the counts at each step (see :func:`build_adversarial_set`).
    """

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    info: dict[str, Any]


def build_adversarial_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Any,
                          generator: torch.Generator | None = None, *,
                          class_targets: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Algorithm 2 on ``(x, y)``: the successful fi_pso examples with their true labels.

    Args:
        model: the trained classifier (eval mode during the search; its mode is restored).
        x: (N, C, H, W) images in [0, 1]; y: (N,) true labels.
        settings: an :class:`advforge.defenses.influence.FIAT` (thresholds ``fi_img``,
            ``p_target``, ``fi_pixel``; fi_pso's ``particles``, ``iters``, ``eps``, ``a``,
            ``b``, ``stop_when_met``; ``attack_batch`` images per search).
        generator: seeds the swarms (on ``x``'s device).
        class_targets: (K,) y_target per true class (-1: the image's runner-up class); None
            takes :func:`confusion_targets` of the model on ``(x, y)``.

    Returns:
        ``(x_adv, y_true, info)``: the adversarial images (M, C, H, W) and their true labels
        (M,), on ``x``'s device; ``info`` counts the images at each step (``n``,
        ``correct``, ``passed_fi_img``, ``passed_p_target``, ``selected``, ``no_pixels``,
        ``attacked``, ``succeeded``), the class targets and the pixel counts m (min, median, max).
        :func:`adversarial_set` also returns each example's source row.
    """
    made = adversarial_set(model, x, y, settings, generator, class_targets=class_targets)
    return made.x, made.y, made.info


def adversarial_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Any,
                    generator: torch.Generator | None = None, *,
                    class_targets: torch.Tensor | None = None,
                    progress: SearchProgress | None = None,
                    part: str = "train") -> AdversarialSet:
    """:func:`build_adversarial_set`, keeping the source row of every example.

    ``progress`` (with the split's name ``part``) checkpoints the swarm search after every
    ``settings.attack_batch`` images and continues a search it holds batches of.
    """
    num_classes = int(getattr(model, "num_classes", 0)) or None
    check_images(x, channels=getattr(model, "in_channels", None))
    check_labels(y, x.shape[0], num_classes)
    y = y.to(device=x.device, dtype=torch.long)
    if class_targets is None:
        class_targets = confusion_targets(predict(model, x), y, num_classes or int(y.max()) + 1)
    plan = progress.plan(part) if progress is not None else None
    if plan is None:  # steps 1-3; a resumed search reads them from its checkpoint
        plan = plan_attacks(model, x, y, settings, class_targets)
        if progress is not None:
            progress.save_plan(part, plan)
    idx, target = plan.index.to(x.device), plan.target.to(x.device)
    rows = plan.rows()
    x_adv, won = _attack(model, x[idx], y[idx], target, rows, settings, generator, progress,
                         part)
    info = {**plan.counts, "attacked": int(idx.numel()), "succeeded": int(won.sum()),
            "class_targets": class_targets.tolist(),
            "pixels": _summary([len(r) for r in rows])}
    return AdversarialSet(x_adv[won], y[idx][won], idx[won], info)


COUNTS = ("n", "correct", "passed_fi_img", "passed_p_target", "selected", "no_pixels")


@dataclasses.dataclass
class AttackPlan:
    """Algorithm 2, steps 1-3, on one split: which images are attacked, towards which class,
    over which pixels. On a slow model over a large split these steps alone take minutes (an
    image-level FI per image), so a checkpointed search keeps the plan beside its batches.

    Attributes:
        index: (A,) the rows of the split to attack (selected, with at least one pixel).
        target: (A,) y_target of each.
        pixels: (A, C*H*W) bool, the components with pixel-level FI >= FI_pixel.
        counts: the images at each step (:data:`COUNTS`).
    """

    index: torch.Tensor
    target: torch.Tensor
    pixels: torch.Tensor
    counts: dict[str, int]

    def rows(self) -> list[tuple[int, ...]]:
        """Each attacked image's pixel indices, in index order (fi_pso's ``indices``)."""
        return _rows(self.pixels)


def plan_attacks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Any,
                 class_targets: torch.Tensor) -> AttackPlan:
    """Algorithm 2, steps 1-3 on ``(x, y)`` (labels on ``x``'s device)."""
    sel = select_vulnerable(model, x, y, fi_img=settings.fi_img, p_target=settings.p_target,
                            class_targets=class_targets)
    idx = sel.selected.nonzero().flatten()
    target = sel.target[idx]
    on = idx.to(x.device)
    mask = vulnerable_mask(model, x[on], y[on], target, settings.fi_pixel)
    keep = mask.any(dim=1)
    counts = {"n": int(x.shape[0]), "correct": int(sel.correct.sum()),
              "passed_fi_img": int(sel.passed_fi.sum()),
              "passed_p_target": int(sel.passed_p.sum()), "selected": int(sel.selected.sum()),
              "no_pixels": int((~keep).sum())}
    return AttackPlan(idx[keep], target[keep], mask[keep], counts)


def _summary(counts: list[int]) -> dict[str, Any]:
    """Min, median and max of the per-image pixel counts m (None when no image)."""
    if not counts:
        return {"min": None, "median": None, "max": None}
    ordered = sorted(counts)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


def _attack(model, x, y, target, rows, settings, generator, progress=None, split="train"
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """fi_pso on each image's own pixels, ``settings.attack_batch`` images per search;
    returns (x_adv, requirement met) for every image. Batches ``progress`` holds are taken
    from it; each new one is recorded there."""
    outs, mets = [x[:0]], [torch.zeros(0, dtype=torch.bool, device=x.device)]
    start = 0
    if progress is not None:
        saved_x, saved_met = progress.restore(split, generator)
        outs += [t.to(device=x.device, dtype=x.dtype) for t in saved_x]
        mets += [t.to(x.device) for t in saved_met]
        start = progress.done(split)
    step = settings.attack_batch
    for s in range(start, x.shape[0], step):
        batch = slice(s, s + step)
        attack = FiPSO(indices=tuple(rows[batch]), particles=settings.particles,
                       iters=settings.iters, eps=settings.eps if settings.eps is not None
                       else 1.0, a=settings.a, b=settings.b,
                       stop_when_met=settings.stop_when_met)
        with model_mode(model, "eval"):
            x_adv = attack(model, x[batch], y[batch], target=target[batch], generator=generator)
            met = attack.requirements(model, x[batch], x_adv, y[batch], target=target[batch]).met
        outs.append(x_adv)
        mets.append(met.to(x.device))
        if progress is not None:
            progress.record(split, outs, mets, generator)
    return torch.cat(outs), torch.cat(mets)


def check_threshold(name: str, value: object, *, upper: float | None = None) -> None:
    """Refuse anything but a finite number >= 0 (and <= ``upper`` when given)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    if not ok or value < 0 or value == float("inf") or (upper is not None and value > upper):
        bounds = f"[0, {upper:g}]" if upper is not None else "[0, inf)"
        raise InputError(f"{name} must be a number in {bounds}, got {value!r}")
