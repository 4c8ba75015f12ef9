"""Resumable training state in ONE safetensors file, with no pickle anywhere.

Tensors (model weights and buffers, optimizer state tensors, torch RNG states) are safetensors
entries; everything else (epoch, history, config, optimizer hyperparameters and scalar state,
Python/NumPy RNG states) is a JSON document stored in the file's metadata. One file written
atomically means the weights and the epoch counter can never disagree after a crash.

Key layout: ``model.<state key>``, ``optim.<param id>.<name>``, ``rng.torch``, ``rng.cuda.<i>``,
and ``extra.<key>`` for a training objective's own tensors.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from advforge.errors import CheckpointError
from advforge.models.io import clean_state_dict
from advforge.utils.checkpoint import first_line, read_state_file, save_safetensors

STATE_FILE = "train_state.safetensors"
FORMAT = "advforge-train-state-v1"


def optimizer_to_tensors(
    optimizer: torch.optim.Optimizer, prefix: str = "optim."
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state as safetensors entries ``<prefix><param id>.<name>`` and a JSON
    document (param groups and non-tensor per-parameter state)."""
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in opt["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": opt["param_groups"], "scalars": scalars}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict[str, Any],
    prefix: str = "optim.", path: str | os.PathLike = "<state>",
) -> None:
    """Load what :func:`optimizer_to_tensors` returned into ``optimizer``.

    Raises:
        CheckpointError: the state does not match the optimiser.
    """
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, name = key[len(prefix):].split(".", 1)
            opt_state.setdefault(int(pid), {})[name] = value
    try:
        for pid, entries in doc["scalars"].items():
            opt_state.setdefault(int(pid), {}).update(entries)
        optimizer.load_state_dict({"state": opt_state, "param_groups": doc["param_groups"]})
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"state {path} does not match the optimizer: {first_line(exc)}") from None


def save_train_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict,
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """Atomically write model, optimizer and RNG states plus ``meta`` (JSON-serialisable).

    Args:
        path: the state file (``<run_dir>/train_state.safetensors``).
        model: the (unwrapped) model.
        optimizer: its optimizer.
        meta: e.g. ``{"epoch": 3, "history": [...], "config": {...}}``.
        extra: more tensors (e.g. a training objective's own state), saved as
            ``extra.<key>`` and returned by :func:`read_train_state` under the same keys.
    """
    tensors = {f"model.{k}": v for k, v in clean_state_dict(model.state_dict()).items()}
    opt_tensors, opt_doc = optimizer_to_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors.update({f"extra.{k}": v.detach().contiguous() for k, v in (extra or {}).items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    doc = dict(meta)
    doc["optimizer"] = opt_doc
    doc["rng"] = {
        "python": _to_json(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), *map(_py, np_state[2:])],
    }
    # safetensors metadata is str -> str, so the JSON document is one string value.
    save_safetensors(path, tensors, metadata={"format": FORMAT, "state": json.dumps(doc)})


def load_train_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore model, optimizer and RNG states written by :func:`save_train_state`.

    Returns:
        The JSON document (``epoch``, ``history``, ``config``, ...).

    Raises:
        CheckpointError: the file is missing, corrupt, of another format, or does not match
            the model / optimizer.
    """
    tensors, doc = read_train_state(path)
    apply_train_state(tensors, doc, model, optimizer, path)
    return doc


def apply_train_state(
    tensors: dict[str, torch.Tensor],
    doc: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    path: str | os.PathLike = "<state>",
) -> None:
    """Apply what :func:`read_train_state` returned (split out so callers can check ``doc``
    before anything is modified)."""
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"state {path} does not match the model: {first_line(exc)}") from None
    optimizer_from_tensors(optimizer, tensors, doc["optimizer"], "optim.", path)
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())
            if f"rng.cuda.{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    py = doc["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npv = doc["rng"]["numpy"]
    np.random.set_state((npv[0], np.asarray(npv[1], dtype=np.uint32), *npv[2:]))


def read_train_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the tensors and the JSON document of a state file without applying them."""
    tensors, doc = read_state_file(path, FORMAT)
    try:
        _ = doc["epoch"], doc["optimizer"]["param_groups"], doc["rng"]["python"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"corrupt training state {path}: bad metadata ({exc})") from None
    if "rng.torch" not in tensors:
        raise CheckpointError(f"corrupt training state {path}: no RNG state")
    return tensors, doc


def _to_json(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_to_json(v) for v in obj]
    return obj


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
