"""Resumable training state and final checkpoints of the learned attackers, in safetensors +
JSON only (no pickle, docs/contract.md).

A run directory holds:

* ``generator.safetensors`` + ``config.json``: the trained attacker (what :func:`load_attacker`
  reads), written when training ends;
* ``train_state.safetensors``: every network, every optimizer's moments, the RNG state, and
  (as a JSON document in the file's metadata) the epoch counter, history and config; written
  after each epoch so ``resume=True`` continues. One file written atomically means weights and
  epoch counter can never disagree after a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.errors import CheckpointError
from advforge.generative.parallel import barrier, is_main
from advforge.utils.checkpoint import (
    atomic_write_json,
    first_line,
    read_state_file,
    save_safetensors,
)

STATE_FILE = "train_state.safetensors"
STATE_FORMAT = "advforge-gan-state-v1"
GENERATOR_FILE = "generator.safetensors"
CONFIG_FILE = "config.json"


def _optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimizer state dict into tensors (safetensors) and plain values (JSON)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            name = f"{prefix}.{idx}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.reshape(-1) if value.dim() == 0 else value
                if value.dim() == 0:
                    scalars[name] = "0d"  # remember to restore the 0-d shape
            else:
                scalars[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            if meta["scalars"].get(name) == "0d":
                value = value.reshape(())
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        if value != "0d" and name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(
    run_dir: str | Path,
    *,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: torch.Generator,
    meta: dict[str, Any],
) -> None:
    """Atomically write everything needed to continue training into one safetensors file
    (tensors as entries, the rest as a JSON document in its metadata)."""
    tensors: dict[str, torch.Tensor] = {"rng": rng.get_state()}
    opt_meta = {}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    for name, opt in optimizers.items():
        t, m = _optimizer_tensors(opt, f"opt_{name}")
        tensors.update(t)
        opt_meta[name] = m
    doc = json.dumps({"meta": meta, "optimizers": opt_meta}, default=str)
    save_safetensors(Path(run_dir) / STATE_FILE, tensors,
                     metadata={"format": STATE_FORMAT, "state": doc})


def has_training_state(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE_FILE).is_file()


def read_training_meta(run_dir: str | Path) -> dict[str, Any]:
    """The bookkeeping (``meta``) of a saved training state, without restoring anything.

    Raises:
        CheckpointError: the file is missing or corrupt.
    """
    path = Path(run_dir) / STATE_FILE
    _, info = read_state_file(path, STATE_FORMAT)
    if "meta" not in info:
        raise CheckpointError(f"corrupt training state {path}: incomplete")
    return info["meta"]


def load_training_state(
    run_dir: str | Path,
    *,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: torch.Generator,
) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote into the given objects; return ``meta``.

    Raises:
        CheckpointError: the file is missing, corrupt, or does not fit the given objects.
    """
    path = Path(run_dir) / STATE_FILE
    tensors, info = read_state_file(path, STATE_FORMAT)
    if "optimizers" not in info or "meta" not in info or "rng" not in tensors:
        raise CheckpointError(f"corrupt training state {path}: incomplete")
    try:
        for name, module in modules.items():
            n = len(name) + 1
            module.load_state_dict({k[n:]: v for k, v in tensors.items()
                                    if k.startswith(name + ".")})
        for name, opt in optimizers.items():
            _restore_optimizer(opt, tensors, info["optimizers"][name], f"opt_{name}")
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"training state {path} does not fit this run: {first_line(exc)}") from None
    rng.set_state(tensors["rng"])
    return info["meta"]


def write_checkpoint(run_dir: str | Path, generator: nn.Module, config: dict[str, Any]) -> None:
    """The trained attacker: ``generator.safetensors`` (weights only) then ``config.json``.

    Every rank calls it; rank 0 writes and the others wait until the files exist."""
    if is_main():
        run_dir = Path(run_dir)
        save_safetensors(run_dir / GENERATOR_FILE, generator.state_dict(),
                         metadata={"kind": str(config.get("kind"))})
        atomic_write_json(run_dir / CONFIG_FILE, config)
    barrier()
