"""Data for the AI-GAN Fig. 3 sample grid: one clean source per class, attacked towards each
target class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from advforge.eval.runner import AttackFn, call_attack
from advforge.utils.validate import check_images, check_labels


def sample_grid(
    attack: AttackFn,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    targets: Sequence[int] | None = None,
    max_classes: int = 10,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Data for the AI-GAN Fig. 3 sample grid: one source image per class, attacked towards
    every other class.

    The source of class ``s`` is the first input of that class the model classifies correctly.
    Grids wider than ``max_classes`` are unreadable, so only classes ``0 .. max_classes-1``
    are used as sources (and, by default, as targets).

    Args:
        attack, model, x, y: as for :func:`evaluate`.
        num_classes: K.
        targets: the target classes, one grid row each; default every source class. Pass
            ``[t]`` for an attacker that only knows one target (AdvGAN).
        max_classes: at most this many source classes (columns).
        batch_size: pairs per attack call.
        generator: passed to the attack.

    Returns:
        A dict of CPU tensors, with k = min(num_classes, max_classes) columns and R rows:
        ``x`` (k, C, H, W) clean sources (zeros where a class has no correct input);
        ``x_adv`` (R, k, C, H, W) indexed ``[row, source]``, the clean image where the row's
        target equals the source; ``pred`` (R, k) predictions after the attack (-1 where the
        source is missing); ``targets`` (R,) the row classes; ``present`` (k,) whether class
        s had a correctly classified input; ``index`` (k,) its index into ``x`` (-1 if none).
    """
    check_images(x, channels=getattr(model, "in_channels", None))
    check_labels(y, x.shape[0], num_classes)
    y = y.to(device=x.device, dtype=torch.long)
    k = min(int(num_classes), int(max_classes))
    rows = torch.arange(k) if targets is None else torch.as_tensor(list(targets), dtype=torch.long)
    check_labels(rows, rows.numel(), num_classes, name="targets")
    index = _first_correct_per_class(model, x, y, k, batch_size)  # (k,)
    present = index >= 0
    x_src = torch.zeros((k, *x.shape[1:]), dtype=x.dtype, device=x.device)
    x_src[present] = x[index[present]]
    grid = x_src.unsqueeze(0).repeat(rows.numel(), 1, 1, 1, 1)  # (R, k, C, H, W)
    pred = torch.full((rows.numel(), k), -1, dtype=torch.long)
    # Every (row, present source) cell; a source equal to its row's target stays clean.
    cell_r, cell_s = torch.meshgrid(torch.arange(rows.numel()), torch.arange(k), indexing="ij")
    cell_r, cell_s = cell_r.flatten(), cell_s.flatten()
    keep = present.cpu()[cell_s]
    cell_r, cell_s = cell_r[keep], cell_s[keep]
    clean = rows[cell_r] == cell_s
    pred[cell_r[clean], cell_s[clean]] = cell_s[clean]  # correctly classified by construction
    cell_r, cell_s = cell_r[~clean], cell_s[~clean]
    for start in range(0, cell_r.numel(), batch_size):
        r, s = cell_r[start : start + batch_size], cell_s[start : start + batch_size]
        t, s_dev = rows[r].to(x.device), s.to(x.device)
        x_adv, _ = call_attack(attack, model, x_src[s_dev], s_dev, t, generator)
        grid[r.to(x.device), s_dev] = x_adv.to(grid.dtype)
        with torch.no_grad():
            pred[r, s] = model(x_adv).argmax(dim=1).cpu()
    return {
        "x": x_src.cpu(),
        "x_adv": grid.cpu(),
        "pred": pred,
        "targets": rows,
        "present": present.cpu(),
        "index": index.cpu(),
    }


def _first_correct_per_class(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, batch_size: int
) -> torch.Tensor:
    """Index of the first correctly classified input of each class < k (-1 if none); stops
    predicting as soon as every class has one."""
    index = torch.full((k,), -1, dtype=torch.long, device=x.device)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            yb = y[start : start + batch_size]
            ok = (model(x[start : start + batch_size]).argmax(dim=1) == yb) & (yb < k)
            for i in ok.nonzero().flatten().tolist():
                if index[yb[i]] < 0:
                    index[yb[i]] = start + i
            if (index >= 0).all():
                break
    return index
