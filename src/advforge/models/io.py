"""Classifier checkpoints: ``model.safetensors`` (weights only) + ``config.json``.

``config.json`` holds everything needed to rebuild the network plus provenance (dataset, seed,
package version, metrics, time). The network comes from one of two places:

* ``"arch"`` (+ ``"arch_kwargs"``): a zoo architecture; the weights are the state dict of the
  :class:`ImageClassifier` that :func:`advforge.models.create` builds (keys ``net.*``);
* ``"factory"``: a user's ``"package.module:callable"`` (:mod:`.factory`); the weights are the
  state dict of the module it returns, which is then wrapped in an :class:`ImageClassifier`
  with the recorded mean/std (written by :func:`advforge.models.import_model`).

Loading never unpickles: the architecture comes from the registry or the factory and the
weights from safetensors, loaded strictly.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.errors import AdvforgeError, CheckpointError
from advforge.models.wrapper import ImageClassifier
from advforge.utils.checkpoint import (
    atomic_write_json,
    load_safetensors,
    read_json,
    save_safetensors,
)

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "advforge-classifier-v1"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # added by DistributedDataParallel / torch.compile


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel / DataParallel (``.module``) and torch.compile
    (``._orig_mod``) wrappers, returning the module that owns the weights."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` / ``_orig_mod.`` prefixes (at any depth for ``_orig_mod.``, which
    torch.compile inserts wherever a submodule was compiled)."""
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key.replace("._orig_mod.", ".")] = value
    return out


def save_model(
    model: nn.Module,
    run_dir: str | os.PathLike,
    *,
    arch: str,
    arch_kwargs: dict[str, Any] | None,
    dataset: str,
    seed: int | None,
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/model.safetensors`` and ``run_dir/config.json`` atomically.

    Args:
        model: an :class:`ImageClassifier` (possibly wrapped by DDP or torch.compile).
        run_dir: output directory (created if missing).
        arch: registry name the model was built with.
        arch_kwargs: the architecture kwargs it was built with (JSON-serialisable).
        dataset: dataset name the weights were trained on.
        seed: training seed.
        metrics: e.g. ``{"test_accuracy": 0.99, "train_seconds": 12.3}``.
        extra: anything else worth keeping (training config, history); stored under ``extra``.

    Returns:
        ``run_dir`` as a Path.
    """
    from advforge import __version__  # lazy: advforge/__init__ imports this package

    net = unwrap_model(model)
    if not isinstance(net, ImageClassifier):
        raise CheckpointError(f"save_model needs an ImageClassifier, got {type(net).__name__}")
    input_size = getattr(net, "input_size", None)
    if input_size is None:
        raise CheckpointError("the model has no input_size; build it with advforge.models.create")
    run_dir = Path(run_dir)
    state = clean_state_dict({k: v for k, v in net.state_dict().items()})
    config = {
        "format": FORMAT,
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs or {}),
        "num_classes": net.num_classes,
        "in_channels": net.in_channels,
        "input_size": int(input_size),
        "mean": net.mean.flatten().tolist(),
        "std": net.std.flatten().tolist(),
        "dataset": dataset,
        "seed": seed,
        "version": __version__,
        "metrics": dict(metrics),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    write_run(run_dir, state, config)
    log.info("saved %s to %s", arch, run_dir)
    return run_dir


def write_run(run_dir: str | os.PathLike, state: dict[str, torch.Tensor],
              config: dict[str, Any]) -> Path:
    """Write ``state`` to ``model.safetensors`` and ``config`` to ``config.json``, atomically.

    Weights first, config last: config.json present means the pair is complete (an old
    config.json is removed first so it can never describe half-replaced weights).
    """
    run_dir = Path(run_dir)
    kind = "arch" if "arch" in config else "factory"
    (run_dir / CONFIG).unlink(missing_ok=True)
    save_safetensors(run_dir / WEIGHTS, state, metadata={"format": FORMAT, kind: config[kind]})
    atomic_write_json(run_dir / CONFIG, config)
    return run_dir


def read_model_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` of a run directory (CheckpointError if unusable)."""
    run_dir = _resolve_run_dir(run_dir)
    config = read_json(run_dir / CONFIG)
    if ("arch" in config) == ("factory" in config):
        what = "both arch and factory" if "arch" in config else "missing arch (or factory)"
        raise CheckpointError(f"corrupt {run_dir / CONFIG}: {what}")
    required = ("num_classes", "in_channels", "input_size", "mean", "std")
    missing = [k for k in required if k not in config]
    if missing:
        raise CheckpointError(f"corrupt {run_dir / CONFIG}: missing {', '.join(missing)}")
    if not isinstance(config.get("arch_kwargs", {}), dict):
        raise CheckpointError(f"corrupt {run_dir / CONFIG}: arch_kwargs is not an object")
    return config


def load_model(run_dir: str | os.PathLike) -> ImageClassifier:
    """Rebuild a saved classifier in eval mode, on the CPU, without unpickling anything.

    Args:
        run_dir: a run directory whose config.json names a zoo ``"arch"`` or a user
            ``"factory"`` (a path to a file inside it works too). A factory is imported with
            the current directory first on ``sys.path``, as ``python -m`` does.

    Raises:
        CheckpointError: missing directory, missing or corrupt ``config.json`` or
            ``model.safetensors``, unknown architecture, a factory that cannot be imported or
            called, or weights that do not match the network.
    """
    run_dir = _resolve_run_dir(run_dir)
    config = read_model_config(run_dir)
    try:
        model, what = _build(config)
    except AdvforgeError as exc:
        raise CheckpointError(f"cannot rebuild the model of {run_dir / CONFIG}: {exc}") from None
    state = clean_state_dict(load_safetensors(run_dir / WEIGHTS))
    target = model if "arch" in config else model.net  # a factory's file holds its own keys
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights in {run_dir / WEIGHTS} do not match {what}: "
            f"{mismatch_summary(target.state_dict(), state, exc)}"
        ) from None
    return model.eval()


def _build(config: dict[str, Any]) -> tuple[ImageClassifier, str]:
    """The untrained classifier a config describes, and how to name it in messages."""
    from advforge.models.factory import build_from_factory
    from advforge.models.zoo import create

    shape = {k: config[k] for k in ("num_classes", "in_channels", "input_size")}
    if "arch" in config:
        model = create(config["arch"], mean=config["mean"], std=config["std"], **shape,
                       **config.get("arch_kwargs", {}))
        return model, repr(config["arch"])
    net = build_from_factory(config["factory"])
    try:
        model = ImageClassifier(net, config["mean"], config["std"],
                                num_classes=shape["num_classes"],
                                in_channels=shape["in_channels"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"bad normalisation: {exc}") from None
    model.input_size = int(shape["input_size"])
    return model, f"factory {config['factory']!r}"


def _resolve_run_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CONFIG):
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    return path


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def mismatch_summary(
    expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], exc: Exception
) -> str:
    """One line: missing / unexpected keys and the first few shape mismatches."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {_few(unexpected)})")
    shapes = [f"{key} has shape {tuple(got[key].shape)}, expected {tuple(expected[key].shape)}"
              for key in sorted(set(expected) & set(got))
              if expected[key].shape != got[key].shape]
    parts += shapes[:3] + ([f"{len(shapes) - 3} more shape mismatches"] if len(shapes) > 3
                           else [])
    return "; ".join(parts) or str(exc).splitlines()[0]
