"""Helpers shared by the learned attackers' training loops: data, losses, progress, model
identity and held-out success (training targets are drawn in :mod:`.targets`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advforge.attacks.losses import margin
from advforge.errors import AdvforgeError, InputError
from advforge.generative.nets import GENERATORS, OUTPUTS
from advforge.generative.parallel import average_gradients, is_main, shard_batch
from advforge.utils.checkpoint import read_json
from advforge.utils.modes import model_mode
from advforge.utils.validate import check_images, check_labels

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None] | bool | None


def as_tensors(data: Any, name: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Accept an ``ImageSet`` (``.x``, ``.y``) or an ``(x, y)`` pair and validate it."""
    if hasattr(data, "x") and hasattr(data, "y"):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise InputError(f"{name} data must be an ImageSet or an (x, y) pair")
    check_images(x, name=f"{name}.x")
    check_labels(y, x.shape[0], name=f"{name}.y")
    return x, y.long()


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a parameterless model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def iterate_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled minibatches; the permutation comes from ``generator`` so runs (and resumed
    runs) repeat exactly. A last batch smaller than 2 is dropped (batch norm needs 2).

    Under torchrun ``batch_size`` is the global batch and each rank gets its equal share of
    it (:func:`advforge.generative.parallel.shard_batch`; every rank draws the same order)."""
    perm = torch.randperm(x.shape[0], generator=generator, device=generator.device).to(x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = perm[i : i + batch_size]
        if idx.numel() >= 2 and (share := shard_batch(x[idx], y[idx])) is not None:
            yield share


def check_gan_config(cfg: Any) -> None:
    """The checks AIGANConfig and AdvGANConfig share (budget, schedule, sizes, rates)."""
    if not 0 < cfg.eps <= 1:
        raise InputError(f"eps must lie in (0, 1], got {cfg.eps}")
    for name in ("epochs", "eval_size"):
        if getattr(cfg, name) < 0:
            raise InputError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("g_ch", "d_ch"):
        if getattr(cfg, name) < 1:
            raise InputError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.batch_size < 2:
        raise InputError("batch_size must be >= 2 (batch norm needs two images)")
    if not cfg.lr > 0:
        raise InputError(f"lr must be > 0, got {cfg.lr}")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise InputError(f"lr_schedule must be constant or cosine, got {cfg.lr_schedule!r}")
    if cfg.kappa < 0:
        raise InputError(f"kappa must be >= 0, got {cfg.kappa}")
    if cfg.g_output not in OUTPUTS:
        raise InputError(f"g_output must be one of {OUTPUTS}, got {cfg.g_output!r}")
    if cfg.g_arch not in GENERATORS:
        raise InputError(f"g_arch must be one of {tuple(GENERATORS)}, got {cfg.g_arch!r}")


def cw_target_loss(logits: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """C&W's targeted loss max(max_{i != t} Z_i - Z_t, -kappa), batch mean. Minimising it
    maximises the target log-probability of Eq. 9 the way the paper says it does (Sec. V-B)."""
    return margin(logits, target, target, kappa=kappa).mean()


def gan_loss(logits: torch.Tensor, clean: bool, kind: str) -> torch.Tensor:
    """Source-head loss pushing ``logits`` towards "clean" (1) or "perturbed" (0):
    ``bce`` is the log-likelihood of Eq. 6; ``lsgan`` the least-squares loss of AdvGAN's code."""
    label = torch.full_like(logits, 1.0 if clean else 0.0)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, label)
    if kind == "lsgan":
        return F.mse_loss(logits, label)
    raise InputError(f"unknown GAN loss {kind!r} (use bce or lsgan)")


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter]) -> None:
    """One optimizer step on ``params`` only: gradients via autograd.grad, so the target, the
    local model and the other network never receive a ``.grad``."""
    grads = torch.autograd.grad(loss, params)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    average_gradients(params)  # data parallel: the mean over ranks (identity in one process)
    opt.step()
    opt.zero_grad(set_to_none=True)


class ProgressReporter:
    """Turns the ``progress`` argument into per-step callbacks: a callable gets a dict per
    step; ``True`` shows a tqdm bar on stderr when it is a terminal; False/None is silent."""

    def __init__(self, progress: Progress, total: int, desc: str) -> None:
        main = is_main()  # under torchrun only rank 0 reports
        self.callback = progress if callable(progress) and main else None
        self.bar = None
        if progress is True and main:
            import sys

            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)

    def update(self, info: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback(info)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in info.items()
                                  if isinstance(v, float)}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes and bytes), in key order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def run_arch(run_dir: str | Path | None) -> str | None:
    """The architecture a classifier run directory's config.json names, if readable."""
    if run_dir is None:
        return None
    try:
        cfg = read_json(Path(run_dir) / "config.json")
    except AdvforgeError:
        return None
    return cfg.get("arch") or cfg.get("name") or cfg.get("registry_name")


def model_identity(model: nn.Module, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Which target model an attacker was trained against: its run directory, the arch its
    config.json names, and a hash of its weights (so a report can tell a stale attacker)."""
    return {
        "run_dir": str(run_dir) if run_dir is not None else None,
        "arch": run_arch(run_dir) or type(getattr(model, "net", model)).__name__,
        "weights_sha256": weights_hash(model),
    }


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Argmax predictions in eval mode (mode restored afterwards)."""
    with model_mode(model, "eval"):
        return torch.cat([model(x[i : i + batch_size]).argmax(1)
                          for i in range(0, x.shape[0], batch_size)])


@torch.no_grad()
def heldout_success(
    forge: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    targets: list[int] | None = None,
) -> dict[str, Any]:
    """Targeted success over every (input, target != y) pair of a held-out set, counted over
    inputs ``model`` classifies correctly (DESIGN.md's success rule).

    Args:
        forge: ``forge(x, t) -> x_adv``.
        targets: the target classes to try (all classes when None).

    Returns:
        ``{"success": overall rate, "per_target": {t: rate}, "pairs": n, "clean_acc": a}``.
    """
    pred = predict(model, x)
    keep = pred == y
    x, y = x[keep], y[keep]
    per_target, hits, pairs = {}, 0, 0
    for t in targets if targets is not None else range(num_classes):
        m = y != t
        if not m.any():
            continue
        xs, tt = x[m], torch.full_like(y[m], t)
        x_adv = torch.cat([forge(xs[i : i + 250], tt[i : i + 250])
                           for i in range(0, xs.shape[0], 250)])
        ok = int((predict(model, x_adv) == t).sum())
        per_target[int(t)] = ok / int(m.sum())
        hits, pairs = hits + ok, pairs + int(m.sum())
    return {"success": hits / max(pairs, 1), "per_target": per_target, "pairs": pairs,
            "clean_acc": float(keep.float().mean())}


def jsonable(obj: Any) -> Any:
    """Round-trip through JSON so configs with tuples/paths become plain JSON values."""
    return json.loads(json.dumps(obj, default=str))


def with_config_defaults(config_class: type, saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (a config read back from JSON) with every field it predates set to what a
    run of that time did: the value in the class's ``PREDATED`` mapping where the field was
    added with another default than the one it has now (e.g. a feature that is on by default
    but did not exist then), else the dataclass default, as JSON values. So a run saved
    before a field existed compares equal to one that sets the field to what it did."""
    defaults = jsonable({f.name: f.default for f in dataclasses.fields(config_class)
                         if f.default is not dataclasses.MISSING})
    return {**defaults, **getattr(config_class, "PREDATED", {}), **saved}
