"""``import_model``: turn a user's own network (a factory + safetensors weights) into a run
directory that every command taking ``--model`` accepts.

Everything that can be wrong is checked before anything is written: the output directory, the
weights file (safetensors only, never a pickle), the factory, a strict load of the weights, the
normalisation, and the network's output shape on the dataset's images. Then the clean test
accuracy is measured and recorded in ``config.json`` under ``metrics``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.errors import AdvforgeError, InputError
from advforge.models.factory import build_from_factory
from advforge.models.io import FORMAT, clean_state_dict, mismatch_summary, write_run
from advforge.models.wrapper import ImageClassifier
from advforge.utils.checkpoint import first_line, load_safetensors
from advforge.utils.paths import check_output_dir


def import_model(
    factory: str,
    weights: str | os.PathLike,
    *,
    dataset: str,
    out: str | os.PathLike,
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Check a user's network against a dataset and write it as a classifier run directory.

    Args:
        factory: ``"package.module:callable"``, called with no arguments, returning an
            ``nn.Module`` that maps (B, C, H, W) images to (B, K) logits.
        weights: a ``.safetensors`` file holding that module's ``state_dict()``.
        dataset: dataset name (``advforge datasets``); its class count and image shape must
            fit the network, and its test split measures the clean accuracy.
        out: run directory to write (created if missing).
        mean, std: per-channel normalisation the network expects (one value for every channel
            or one per channel); None: the network takes [0, 1] images as they are.
        data_dir: where the dataset files are (None: the dataset's default search).
        limit: measure the accuracy on the first N test images only.
        batch_size: images per forward pass when measuring the accuracy.
        device: where to measure the accuracy.

    Returns:
        The ``config.json`` written to ``out`` (``metrics["test_accuracy"]`` holds the clean
        accuracy, ``metrics["n_test"]`` the number of images behind it).

    Raises:
        InputError: any of the checks above fails; the message is one line naming it.
        CheckpointError: the weights file is not a readable safetensors file.
    """
    from advforge import __version__
    from advforge import data as datasets

    out = check_output_dir(out)
    state = _read_weights(weights)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive integer, got {limit!r}")
    net = build_from_factory(factory)
    _load_strict(net, state, factory, weights)
    splits = datasets.load(dataset, data_dir)
    model, (mean, std) = _wrap(net, mean, std, splits)
    model.to(device).eval()
    x, y = splits.test.x[:limit], splits.test.y[:limit]
    _check_output_shape(model, x[:2].to(device), splits, factory)
    accuracy = _accuracy(model, x, y, batch_size)
    config = {
        "format": FORMAT,
        "factory": factory,
        "num_classes": int(splits.num_classes),
        "in_channels": int(splits.in_channels),
        "input_size": int(splits.image_size[0]),
        "mean": mean,
        "std": std,
        "dataset": splits.name,
        "seed": None,
        "version": __version__,
        "metrics": {"test_accuracy": accuracy, "n_test": int(x.shape[0])},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "extra": {"imported_from": str(weights), "weights_sha256": _sha256(Path(weights))},
    }
    write_run(out, state, config)
    return config


def _read_weights(weights: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(weights)
    if not path.is_file():
        raise InputError(f"--weights: no such file {path}")
    try:
        state = load_safetensors(path)
    except AdvforgeError as exc:
        raise InputError(f"--weights {path} is not a readable safetensors file ({exc}); save "
                         "one with safetensors.torch.save_file(net.state_dict(), path)") from None
    if not state:
        raise InputError(f"--weights {path} holds no tensors")
    return clean_state_dict(state)


def _load_strict(net: nn.Module, state: dict[str, torch.Tensor], factory: str,
                 weights: str | os.PathLike) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"--weights {weights} do not fit factory {factory!r}: "
                         f"{mismatch_summary(net.state_dict(), state, exc)}") from None


def _wrap(net: nn.Module, mean: Any, std: Any,
          splits: Any) -> tuple[ImageClassifier, list[list[float]]]:
    """``net`` behind its normalisation, and [mean, std] as given, one value per channel."""
    channels = int(splits.in_channels)
    stats = []
    for name, value, default in (("--mean", mean, 0.0), ("--std", std, 1.0)):
        values = [default] if value is None else _floats(name, value)
        if len(values) not in (1, channels):
            wanted = "1 value" if channels == 1 else f"1 or {channels} values"
            raise InputError(f"{name} needs {wanted} for {splits.name} ({channels} "
                             f"channel{'s' if channels > 1 else ''}), got {len(values)}")
        stats.append(values * channels if len(values) == 1 else values)
    if min(stats[1]) <= 0:
        raise InputError(f"--std must be positive, got {stats[1]}")
    model = ImageClassifier(net, stats[0], stats[1], num_classes=splits.num_classes,
                            in_channels=channels)
    model.input_size = int(splits.image_size[0])
    return model, stats


def _floats(name: str, value: Any) -> list[float]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers, got {value!r}") from None


@torch.no_grad()
def _check_output_shape(model: ImageClassifier, x: torch.Tensor, splits: Any,
                        factory: str) -> None:
    """The network must take the dataset's (B, C, H, W) images and return (B, num_classes)."""
    try:
        logits = model(x)
    except Exception as exc:  # user code: a wrong channel count usually fails here
        raise InputError(
            f"factory {factory!r} fails on a {tuple(x.shape)} batch of {splits.name} images "
            f"({type(exc).__name__}: {first_line(exc)})"
        ) from None
    expected = (x.shape[0], splits.num_classes)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"factory {factory!r} returns {got} for a {tuple(x.shape)} batch; "
                         f"{splits.name} needs logits of shape {expected} "
                         f"({splits.num_classes} classes)")


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    device = model.mean.device
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i : i + batch_size].to(device))  # (B, K)
        correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
    return correct / max(1, x.shape[0])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
