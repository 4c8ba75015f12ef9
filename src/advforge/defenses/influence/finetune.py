"""Sec. 3.2: fine-tune the trained classifier on the training data plus the adversarial set.

The shared classifier loop :func:`advforge.training.fit` does the work (epochs, resumable
state, atomic safetensors + JSON checkpoints); :class:`StartFrom` makes its first epoch start
from the original weights instead of a fresh initialisation. The adversarial sets are saved
next to the run (``fi_at_sets.safetensors`` + ``fi_at_sets.json``) so a resumed run fine-tunes
on exactly the same examples without repeating the swarm search.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from advforge.data.augment import random_shift
from advforge.data.splits import ImageSet
from advforge.training import Objective, TrainConfig, fit
from advforge.utils import atomic_write_bytes, atomic_write_json
from advforge.utils.distributed import DistInfo

ADV_AUGMENTS = ("none", "shift")
SETS_FILE = "fi_at_sets.safetensors"
SETS_META = "fi_at_sets.json"
PARTS = ("train", "test")


class StartFrom(Objective):
    """Cross-entropy on the clean batch (the paper fine-tunes with the ordinary loss on the
    augmented training set), starting from ``original``'s weights and normalisation.

    Args:
        original: the trained classifier (an ``ImageClassifier``).
        settings: the defense's settings dict (recorded; a resume must match it).
    """

    name = "fi-at"

    def __init__(self, original: torch.nn.Module, settings: dict[str, Any]) -> None:
        self.original, self.settings = original, settings

    def setup(self, module: torch.nn.Module, info: DistInfo) -> None:
        module.load_state_dict(self.original.state_dict())
        # mean / std are non-persistent buffers: the state dict does not carry them.
        module.mean.copy_(self.original.mean)
        module.std.copy_(self.original.std)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.settings}


def fine_tune(original: torch.nn.Module, settings: dict[str, Any], train: TrainConfig,
              splits: Any, x_adv: torch.Tensor, y_adv: torch.Tensor, *,
              device: Any = "cpu", progress: bool = False, log: Any = None) -> dict[str, Any]:
    """Train ``original``'s architecture from its weights on ``splits.train`` plus
    ``(x_adv, y_adv)`` for ``train.epochs`` epochs; write the classifier run ``train.out``.

    ``train.limit_train`` applies to the clean images only; the adversarial ones are all
    appended. Returns :func:`advforge.training.fit`'s metrics.
    """
    clean = splits.train
    n = clean.y.shape[0] if train.limit_train is None else min(train.limit_train,
                                                               clean.y.shape[0])
    x = torch.cat([clean.x[:n], x_adv.to(clean.x.device, clean.x.dtype)])
    y = torch.cat([clean.y[:n], y_adv.to(clean.y.device, clean.y.dtype)])
    augmented = copy.copy(splits)  # a DatasetSplits or any object with the same attributes
    augmented.train = ImageSet(x, y)
    train = dataclasses.replace(train, limit_train=None)
    return fit(train, augmented, device=device, progress=progress, log=log,
               objective=StartFrom(original, settings))


def adversarial_copies(x: torch.Tensor, y: torch.Tensor, repeat: int, augment: str = "none",
                       *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adversarial training set ``repeat`` times over, as fine-tuning appends it.

    With ``augment="shift"`` every copy after the first is shifted by per-image random offsets
    of up to 12.5% of the side (the classifiers' shift augmentation, drawn once from
    ``seed``): the few-pixel perturbations are then learnt at several positions rather than
    memorised at one, while the clean training data stays unaugmented.

    Args:
        x: (M, C, H, W) adversarial images; y: (M,) their true labels.

    Returns:
        (repeat * M, C, H, W) images and (repeat * M,) labels, the first M unchanged.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    copies = [x] + [random_shift(x, 0.125, gen) if augment == "shift" else x
                    for _ in range(repeat - 1)]
    return torch.cat(copies), y.repeat(repeat)


def save_sets(out: Path, sets: dict[str, tuple[torch.Tensor, torch.Tensor]],
              meta: dict[str, Any], sources: dict[str, torch.Tensor] | None = None) -> None:
    """Write both adversarial sets and their source rows (tensors first, the JSON that
    completes them last)."""
    tensors = {}
    for part, (x, y) in sets.items():
        tensors[f"{part}.x"] = x.detach().cpu().contiguous()
        tensors[f"{part}.y"] = y.detach().cpu().contiguous()
    for part, index in (sources or {}).items():
        tensors[f"{part}.index"] = index.detach().cpu().contiguous()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / SETS_FILE, save(tensors))
    atomic_write_json(out / SETS_META, meta)


def load_sets(out: Path, key: dict[str, Any]) -> tuple[
        dict[str, tuple[torch.Tensor, torch.Tensor]], dict[str, Any], dict[str, torch.Tensor]
] | None:
    """The saved sets, their meta and their source rows (empty when the file predates them)
    when they were made with the same ``key`` (settings, model, data), else None."""
    if not (out / SETS_META).is_file() or not (out / SETS_FILE).is_file():
        return None
    meta = json.loads((out / SETS_META).read_text())
    if meta.get("key") != json.loads(json.dumps(key)):
        return None
    tensors = load_file(str(out / SETS_FILE))
    sources = {p: tensors[f"{p}.index"] for p in PARTS if f"{p}.index" in tensors}
    return {p: (tensors[f"{p}.x"], tensors[f"{p}.y"]) for p in PARTS}, meta, sources
