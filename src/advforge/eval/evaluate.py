"""Run an attack over a dataset under one of the target protocols and count what happened.

Success is decided here and nowhere else (docs/contract.md): untargeted success = the
prediction after the attack differs from the true label; targeted success = it equals the
target. Both are counted only over inputs the model classified correctly before the attack, so
an attack gets no credit for the model's own mistakes (ART and advertorch count differently).
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from advforge.errors import InputError
from advforge.eval.metrics import (
    DISTANCE_KEYS,
    confusion_matrix,
    lp_distances,
    rate_by_class,
    summarize,
)
from advforge.eval.requirements import new_tally
from advforge.eval.result import AttackResult
from advforge.eval.runner import AttackFn, call_attack, predict
from advforge.eval.samples import sample_grid
from advforge.utils.validate import check_images, check_labels

logger = logging.getLogger(__name__)

__all__ = ["AttackResult", "evaluate", "expand_pairs", "predict", "sample_grid"]

Targets = int | torch.Tensor | str | None


def evaluate(
    attack: AttackFn,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    targets: Targets = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    keep_adversarial: bool = False,
    progress: Callable[..., Any] | None = None,
    attack_name: str | None = None,
    hyper: dict[str, Any] | None = None,
) -> AttackResult:
    """Attack ``x`` and measure success, distances and time.

    Args:
        attack: ``attack(model, x, y, *, target=None, generator=None) -> x_adv``.
        model: maps (B, C, H, W) images in [0, 1] to logits; used as-is (its train/eval mode is
            never changed), clean predictions are taken under ``torch.no_grad()``.
        x: (N, C, H, W) images in [0, 1].
        y: (N,) true labels.
        targets: ``None`` (untargeted); an int (one target for all; inputs of that class are
            skipped and counted in ``n_skipped``); an (N,) tensor (pairs with target == y
            skipped and counted); or ``"all"``: every class but the true one, N * (K - 1)
            (input, target) pairs, the AI-GAN protocol.
        batch_size: pairs per attack call.
        generator: passed to the attack for reproducible random starts.
        keep_adversarial: keep ``x_adv``, ``source_index`` and ``target`` (on the CPU) in the
            result.
        progress: a tqdm-like factory (e.g. ``tqdm.tqdm``): called once as
            ``progress(total=n_pairs, desc=name)``; the returned bar gets ``update(n)`` after
            each batch and ``close()`` at the end.
        attack_name: name for the report; default ``attack.name``, else the function's or
            the class's name.
        hyper: hyperparameters for the report; default ``attack.hyper()`` when it exists.

    Returns:
        An :class:`AttackResult`.

    Raises:
        InputError: malformed images, labels, targets, or a bad ``batch_size``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if targets is not None and getattr(attack, "takes_target", True) is False:
        raise InputError(f"{attack_name or _name_of(attack)} chooses its own target and takes "
                         "no targets (evaluate it with targets=None)")
    check_images(x, channels=getattr(model, "in_channels", None))
    check_labels(y, x.shape[0], getattr(model, "num_classes", None))
    y = y.to(device=x.device, dtype=torch.long)
    clean_pred, num_classes = predict(model, x, batch_size)
    check_labels(y, x.shape[0], num_classes)
    correct = clean_pred == y  # (N,)
    source, target, rule, n_skipped = expand_pairs(targets, y, correct, num_classes)
    name = attack_name or _name_of(attack)
    bar = _open_bar(progress, source.numel(), name)
    run = _attack_pairs(
        attack, model, x, y, source, target,
        batch_size=batch_size, generator=generator, keep=keep_adversarial, bar=bar,
    )  # fmt: skip
    result = _summarize_run(
        run,
        name=name,
        hyper=_hyper_of(attack, hyper),
        rule=rule,
        y=y,
        source=source,
        target=target,
        correct=correct,
        num_classes=num_classes,
        n_skipped=n_skipped,
    )
    result.norm, result.eps = _budget_of(attack, result.hyper)
    result.device = str(x.device)
    return result


def _budget_of(attack: AttackFn, hyper: dict[str, Any]) -> tuple[str | None, float | None]:
    """(norm, eps) for the report: the attack's own attributes, else its hyperparameters."""
    norm = getattr(attack, "norm", None)
    eps = getattr(attack, "eps", None)
    if not isinstance(eps, numbers.Real):
        eps = hyper.get("eps")
    eps = float(eps) if isinstance(eps, numbers.Real) and not isinstance(eps, bool) else None
    return (norm if isinstance(norm, str) else None), eps


def expand_pairs(
    targets: Targets, y: torch.Tensor, correct: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor | None, str, int]:
    """Turn a ``targets`` spec into the (input, target) pairs to attack.

    Only correctly classified inputs are kept. A pair whose target equals the true label is
    dropped and counted in ``n_skipped`` (over all inputs, correct or not).

    Returns:
        ``(source, target, rule, n_skipped)``: source (M,) indices into ``x``; target (M,)
        classes or ``None`` if untargeted; the rule name; the number of skipped pairs.
    """
    idx = correct.nonzero().flatten()  # (N_correct,)
    if targets is None:
        return idx, None, "none", 0
    if isinstance(targets, str):
        if targets != "all":
            raise InputError(f"targets must be None, an int, a tensor or 'all', got {targets!r}")
        k = num_classes
        source = idx.repeat_interleave(k - 1)  # (N_correct * (K-1),), input-major
        # For input i, the K-1 targets y_i+1, ..., y_i+K-1 (mod K): every class but y_i.
        offsets = torch.arange(1, k, device=y.device).repeat(idx.numel())
        return source, (y[source] + offsets) % k, "all", 0
    rule = "per-input"
    scalar = isinstance(targets, torch.Tensor) and targets.dim() == 0
    if scalar and not (targets.is_floating_point() or targets.dtype == torch.bool):
        targets = int(targets)  # a 0-dim class tensor means the same as the int
    if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
        targets = int(targets)
        if not 0 <= targets < num_classes:
            raise InputError(f"target {targets} is out of range for {num_classes} classes")
        targets, rule = torch.full_like(y, targets), "fixed"
    elif not isinstance(targets, torch.Tensor):
        raise InputError(f"targets must be None, an int, a tensor or 'all', got {targets!r}")
    check_labels(targets, y.shape[0], num_classes, name="targets")
    targets = targets.to(device=y.device, dtype=torch.long)
    keep = correct & (targets != y)
    source = keep.nonzero().flatten()
    return source, targets[source], rule, int((targets == y).sum())


def _name_of(attack: AttackFn) -> str:
    # Registered attacks carry ``name``; plain functions have ``__name__``.
    for attr in ("name", "__name__"):
        value = getattr(attack, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(attack).__name__


def _hyper_of(attack: AttackFn, hyper: dict[str, Any] | None) -> dict[str, Any]:
    if hyper is not None:
        return dict(hyper)
    method = getattr(attack, "hyper", None)
    return dict(method()) if callable(method) else {}


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _open_bar(progress: Callable[..., Any] | None, total: int, desc: str) -> Any:
    if progress is None:
        return _NullBar()
    bar = progress(total=total, desc=desc)
    if not hasattr(bar, "update"):
        raise InputError("progress must be a tqdm-like factory returning an object with update()")
    return bar


@dataclasses.dataclass
class _Run:
    """What the attack loop collects, on the CPU: predictions (M,), per-pair distances (M,)
    by norm, adversarial images if kept, the attack wall time, and the requirement summary of
    an attack that checks its own (``None`` otherwise)."""

    pred: torch.Tensor
    dist: dict[str, torch.Tensor]
    x_adv: torch.Tensor | None
    seconds: float
    requirements: dict[str, Any] | None = None


def _attack_pairs(
    attack: AttackFn,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor | None,
    *,
    batch_size: int,
    generator: torch.Generator | None,
    keep: bool,
    bar: Any,
) -> _Run:
    """Attack the pairs batch by batch; score each batch as it comes.

    An attack with a ``requirements(model, x, x_adv, y, target)`` method (``fi_pso``) also has
    each batch checked against the requirements it was made to; the flags are tallied.
    """
    preds, advs, seconds = [], [], 0.0
    tally = new_tally(attack)
    dists: dict[str, list[torch.Tensor]] = {k: [] for k in DISTANCE_KEYS}
    try:
        for start in range(0, source.numel(), batch_size):
            src = source[start : start + batch_size]
            tb = None if target is None else target[start : start + batch_size]
            xb = x[src]  # (B, C, H, W)
            x_adv, elapsed = call_attack(attack, model, xb, y[src], tb, generator)
            seconds += elapsed
            with torch.no_grad():
                preds.append(model(x_adv).argmax(dim=1).cpu())
            if tally is not None:
                tally.add(attack.requirements(model, xb, x_adv, y[src], tb))
            for key, value in lp_distances(xb, x_adv).items():
                dists[key].append(value.cpu())
            if keep:
                advs.append(x_adv.cpu())
            bar.update(src.numel())
    finally:
        bar.close()
    kept = None
    if keep:
        kept = torch.cat(advs) if advs else torch.empty((0, *x.shape[1:]), dtype=x.dtype)
    return _Run(
        pred=torch.cat(preds) if preds else torch.empty(0, dtype=torch.long),
        dist={k: torch.cat(v) if v else torch.empty(0) for k, v in dists.items()},
        x_adv=kept,
        seconds=seconds,
        requirements=None if tally is None else tally.summary(),
    )


def _summarize_run(
    run: _Run,
    *,
    name: str,
    hyper: dict[str, Any],
    rule: str,
    y: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor | None,
    correct: torch.Tensor,
    num_classes: int,
    n_skipped: int,
) -> AttackResult:
    """Decide success per pair and fold everything into an AttackResult."""
    pred = run.pred  # (M,)
    true = y[source].cpu()
    rows = true if target is None else target.cpu()
    success = pred != true if target is None else pred == rows
    m, n, n_success = pred.numel(), y.numel(), int(success.sum())
    per_target, per_target_n = rate_by_class(rows, success, num_classes)
    distances = {}
    for key, values in run.dist.items():
        distances[key] = summarize(values)
        distances[key]["mean_success"] = summarize(values[success])["mean"]
    n_correct = int(correct.sum())
    result = AttackResult(
        attack=name,
        hyper=hyper,
        targeted=target is not None,
        target_rule=rule,
        num_classes=num_classes,
        n_inputs=n,
        n_correct=n_correct,
        clean_accuracy=n_correct / n,
        n_evaluated=m,
        n_skipped=n_skipped,
        n_success=n_success,
        success_rate=n_success / m if m else None,
        per_target=per_target,
        per_target_n=per_target_n,
        confusion=confusion_matrix(rows, pred, num_classes),
        distances=distances,
        seconds=run.seconds,
        seconds_per_1000=1000.0 * run.seconds / m if m else None,
        robust_accuracy=(n_correct - n_success) / n if target is None else None,
        note=_note(rule, n, n_correct, n_skipped),
        requirements=run.requirements,
        x_adv=run.x_adv,
        source_index=source.cpu() if run.x_adv is not None else None,
        target=target.cpu() if run.x_adv is not None and target is not None else None,
    )
    logger.info("%s: success %d/%d, %.2fs", name, n_success, m, run.seconds)
    return result


def _note(rule: str, n: int, n_correct: int, n_skipped: int) -> str:
    what = (
        "success = prediction after the attack differs from the true label"
        if rule == "none"
        else "success = prediction after the attack equals the target class"
    )
    text = (
        f"Success is counted only over the {n_correct} of {n} inputs the model classified "
        f"correctly before the attack; {what}."
    )
    if rule == "all":
        text += " Every input is attacked towards each of the K-1 classes other than its label."
    if n_skipped:
        text += f" {n_skipped} pairs whose target equals the true label were skipped."
    return text
