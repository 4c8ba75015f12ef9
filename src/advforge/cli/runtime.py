"""What every command needs before it works: device, seed, progress bars, data and model."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from advforge import data as datasets
from advforge.errors import InputError
from advforge.utils.checkpoint import atomic_write_text, read_json

# The synthetic stand-in that --dry-run uses instead of a real dataset: MNIST-shaped, tiny.
DRY_RUN_DATA = {"num_classes": 10, "channels": 1, "size": 28, "n_train": 256, "n_test": 64}


def make_progress(quiet: bool) -> Callable[..., Iterable] | None:
    """A tqdm factory when stderr is a terminal and --quiet is off, else None (no bars)."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    def progress(iterable: Iterable | None = None, **kwargs: Any) -> Iterable:
        return tqdm(iterable, leave=False, dynamic_ncols=True, **kwargs)

    return progress


def load_splits(name: str, data_dir: str | None, dry_run: bool) -> Any:
    if dry_run:
        return datasets.load("synthetic", **DRY_RUN_DATA)
    return datasets.load(name, data_dir)


def take(split: Any, limit: int | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(split) if limit is None else min(limit, len(split))
    return split.x[:n].to(device), split.y[:n].to(device)


def check_model_fits(model: Any, splits: Any, model_dir: str) -> None:
    """Refuse a model whose input channels or class count disagree with the dataset."""
    if model.in_channels != splits.in_channels:
        raise InputError(
            f"model {model_dir} takes {model.in_channels} channels, dataset {splits.name} "
            f"has {splits.in_channels}"
        )
    if model.num_classes != splits.num_classes:
        raise InputError(
            f"model {model_dir} has {model.num_classes} classes, dataset {splits.name} "
            f"has {splits.num_classes}"
        )


def dry_run_model(splits: Any, out: Path, device: torch.device, seed: int) -> Any:
    """Train a tiny Model B for one epoch on the synthetic split, so --dry-run without --model
    still exercises a real checkpoint round trip."""
    from advforge.models import load_model
    from advforge.training import TrainConfig, fit

    run_dir = out / "dry-run-model"
    config = TrainConfig(arch="model_b", dataset="synthetic", epochs=1, batch_size=64,
                         seed=seed, out=str(run_dir))
    fit(config, splits, device=device)
    return load_model(run_dir).to(device)


def resolve_targets(rule: str | int, y: torch.Tensor, num_classes: int, seed: int) -> Any:
    """Turn a target rule into what ``advforge.eval.evaluate`` takes."""
    if rule == "none":
        return None
    if rule == "all":
        return "all"
    if rule == "random":
        g = torch.Generator().manual_seed(seed)
        shift = torch.randint(1, num_classes, y.shape, generator=g).to(y.device)
        return (y + shift) % num_classes  # uniform over the classes != y
    if rule >= num_classes:
        raise InputError(f"target {rule} is out of range for {num_classes} classes")
    return int(rule)


def save_resolved_config(out: Path, text: str) -> None:
    atomic_write_text(out / "resolved_config.yaml", text)


def _recorded_size(recorded: dict[str, Any]) -> tuple[int, int] | None:
    """(H, W) from a run's config.json: ``input_size`` (classifiers) or ``image_size``
    (attackers), an int for square images or a pair."""
    size = recorded.get("input_size", recorded.get("image_size"))
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    return None


def check_dataset_matches(recorded: dict[str, Any], splits: Any, what: str) -> str | None:
    """Compare a run directory's recorded dataset with the data it is about to be used on.

    Args:
        recorded: the run's config.json (``dataset``, ``in_channels``, ``num_classes`` and
            ``input_size`` or ``image_size``, as far as recorded).
        splits: the loaded :class:`~advforge.data.DatasetSplits`.
        what: how to name the run in messages, e.g. ``"model runs/model_b"``.

    Returns:
        None when the run was made on this dataset; a warning (one line) when it was made on
        another dataset of the same image shape and classes, whose results say little about
        the run on its own data.

    Raises:
        InputError: the image shape or class count differs.
    """
    name = recorded.get("dataset") or None
    shape = (splits.in_channels, *splits.image_size)
    size = _recorded_size(recorded)
    channels = recorded.get("in_channels", splits.in_channels)
    made = (channels, *size) if size is not None else None
    if channels != splits.in_channels or (made is not None and made != shape):
        got = "x".join(map(str, made)) if made is not None else f"{channels}-channel"
        raise InputError(f"{what} was made for {got} images ({name or 'dataset not recorded'}); "
                         f"{splits.name} has {'x'.join(map(str, shape))}")
    classes = recorded.get("num_classes", splits.num_classes)
    if classes != splits.num_classes:
        raise InputError(f"{what} has {classes} classes ({name or 'dataset not recorded'}); "
                         f"{splits.name} has {splits.num_classes}")
    if name is None:
        return (f"{what} does not record the dataset it was trained on; results on "
                f"{splits.name} assume it was {splits.name}")
    if name != splits.name:
        return (f"{what} was trained on {name} but is used on {splits.name} (same "
                f"image shape and classes): its results on {splits.name} say little about it")
    return None


def run_config(run_dir: str | Path) -> dict[str, Any]:
    """A run directory's config.json (a one-line CheckpointError when missing or corrupt)."""
    return read_json(Path(run_dir) / "config.json")


def warn(message: str) -> None:
    """Print a warning to stderr, where it is seen even when stdout goes to a file."""
    print(f"advforge: WARNING: {message}", file=sys.stderr, flush=True)


def load_model_and_splits(cfg: Any, device: torch.device, dry_run: bool,
                          out: Path | None) -> tuple[Any, Any, list[str]]:
    """The dataset ``cfg.dataset`` and the classifier run ``cfg.model``, checked against each
    other before anything runs; with ``--dry-run`` and no model, a tiny one trained on the
    synthetic data. Returns ``(splits, model, warnings)``, the dataset-mismatch warnings
    already printed to stderr (for the report)."""
    from advforge.models import load_model

    splits = load_splits(cfg.dataset, cfg.data_dir, dry_run)
    warnings = []
    if cfg.model is not None:
        model = load_model(cfg.model).to(device)
        message = check_dataset_matches(run_config(cfg.model), splits, f"model {cfg.model}")
        warnings += [message] if message else []
    elif dry_run:
        model = dry_run_model(splits, out or Path("runs/dry-run"), device, cfg.seed)
    else:
        raise InputError("--model is required (a run directory from `advforge train-classifier`)")
    check_model_fits(model, splits, cfg.model or "(dry-run)")
    for message in warnings:
        warn(message)
    return splits, model, warnings
