"""Which input components ``fi_pso`` perturbs (Algorithm 1, line 1), and the checks on them.

Components are indices into the flattened C*H*W input (a colour pixel counts as three). They
are given, one list shared by the batch or one list per image, or chosen as the m of largest
pixel-level FI for the objective of Eq. 5 (``advforge.influence``).
"""

from __future__ import annotations

import torch
from torch import nn

from advforge.errors import InputError


def normalise_indices(indices) -> tuple | None:
    """Lists (from JSON or the CLI) to tuples: a flat tuple of ints (shared by the batch) or a
    tuple of such tuples (one per image). Raises InputError on anything else."""
    if indices is None:
        return None
    if isinstance(indices, torch.Tensor):
        indices = indices.tolist()
    if isinstance(indices, int) and not isinstance(indices, bool):
        indices = [indices]
    if not isinstance(indices, (list, tuple)) or not len(indices):
        raise InputError(f"indices must be a non-empty list of component indices, got "
                         f"{indices!r}")
    nested = all(isinstance(r, (list, tuple)) for r in indices)
    rows = indices if nested else [indices]
    for row in rows:
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in row):
            raise InputError("indices must hold integers (or one list of integers per image)")
    return tuple(tuple(r) for r in rows) if nested else tuple(indices)


def check_pixels(pixels: int | None, indices: tuple | None, x: torch.Tensor) -> None:
    """Refuse a budget m above C*H*W and indices out of range, repeated or over budget."""
    d = x[0].numel()
    if pixels is not None and pixels > d:
        raise InputError(f"pixels={pixels} exceeds the {d} components of a "
                         f"{'x'.join(map(str, x.shape[1:]))} input")
    if indices is None:
        return
    nested = isinstance(indices[0], tuple)
    if nested and len(indices) != x.shape[0]:
        raise InputError(f"indices holds {len(indices)} rows for a batch of {x.shape[0]} "
                         "images (give one list per image, or one shared list)")
    for row in indices if nested else (indices,):
        bad = [i for i in row if not 0 <= i < d]
        if bad:
            raise InputError(f"pixel index {bad[0]} is out of range for {d} input components "
                             "(indices run over the flattened C*H*W input)")
        if len(set(row)) != len(row):
            raise InputError("indices repeat a component; each may be perturbed once")
        if pixels is not None and len(row) > pixels:
            raise InputError(f"{len(row)} indices exceed the budget pixels={pixels}")


def chosen_pixels(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  target: torch.Tensor | None, pixels: int | None,
                  indices: tuple | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The components to perturb, as ``(idx, valid)``, both (B, M): long indices into the
    flattened input, and False where a shorter row is padded (its index there is 0)."""
    b, d, dev = x.shape[0], x[0].numel(), x.device
    if indices is not None:
        rows = indices if isinstance(indices[0], tuple) else (indices,) * b
        width = max(len(r) for r in rows)
        idx = torch.zeros(b, width, dtype=torch.long)
        valid = torch.zeros(b, width, dtype=torch.bool)
        for i, row in enumerate(rows):
            idx[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            valid[i, : len(row)] = True
        return idx.to(dev), valid.to(dev)
    if pixels is None or pixels == d:
        idx = torch.arange(d, device=dev).expand(b, d).clone()
    else:
        from advforge.influence import pixel_fi, top_pixels

        idx = top_pixels(pixel_fi(model, x, y, target=target), pixels).to(dev)
    return idx, torch.ones_like(idx, dtype=torch.bool)
