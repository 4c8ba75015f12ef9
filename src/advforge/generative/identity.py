"""Which target model an attacker was trained against: its device, weights hash and arch."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.errors import AdvforgeError
from advforge.utils.checkpoint import read_json


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a parameterless model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes and bytes), in key order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # reshape(-1): a 0-d buffer (BatchNorm's num_batches_tracked) cannot be viewed as
        # bytes directly; the shape is already in the header, so flattening is lossless.
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
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


def per_target_run_info(target: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        dataset: str | None, seed: int,
                        target_run_dir: str | Path | None) -> dict[str, Any]:
    """The config.json entries every per-target attacker run records (AdvGAN, AE4DNN, ATN):
    the data's shape, the class count (the model's, else the labels'), the target model and
    the seed."""
    from advforge import __version__

    num_classes = int(getattr(target, "num_classes", 0) or int(y.max()) + 1)
    return {"format_version": 1, "dataset": dataset, "num_classes": num_classes,
            "in_channels": x.shape[1], "image_size": [x.shape[2], x.shape[3]],
            "target_model": model_identity(target, target_run_dir), "seed": seed,
            "version": __version__}
