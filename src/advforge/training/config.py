"""``TrainConfig``: every knob of ``advforge train-classifier``, validated on construction."""

from __future__ import annotations

import dataclasses
from typing import Any

from advforge.data.augment import check_augment
from advforge.errors import InputError

OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class TrainConfig:
    """Hyperparameters of one classifier training run.

    Attributes:
        arch: model registry name (``advforge.models.names()``).
        dataset: dataset name (recorded in the checkpoint; the caller loads the data).
        data_dir: where the dataset files are (None: the dataset's default).
        epochs: total number of epochs (a resumed run continues up to this count).
        batch_size: global batch size (split evenly across DDP ranks).
        optimizer: ``"adam"`` or ``"sgd"`` (SGD uses ``momentum``).
        lr: initial learning rate.
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 penalty added by the optimizer.
        lr_milestones: epochs after which the learning rate is multiplied by ``lr_gamma``
            (step schedule; empty for a constant rate).
        lr_gamma: step-schedule factor.
        augment: ``"none"``, ``"shift"`` (random shifts up to 12.5%), ``"crop_flip"``
            (pad 4, crop, h-flip) or ``"auto"`` (shift for grey, crop_flip for colour).
        seed: seeds weights, batch order, augmentation and dropout.
        out: run directory for the checkpoint and the resumable state.
        resume: continue from ``out/train_state.safetensors``.
        arch_kwargs: extra architecture options (e.g. ``{"widen_factor": 10}``).
        limit_train: use only the first N training images (quick runs).
        limit_test: use only the first N test images.
        eval_batch_size: batch size for evaluation.
        recipe: the recipe (``advforge.models.recipes``) the command line applied, as
            ``kind:name:dataset``; None when the package defaults were used. Recorded only.
    """

    arch: str = "model_b"
    dataset: str = "mnist5k"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    augment: str = "auto"
    seed: int = 0
    out: str = "runs/model"
    resume: bool = False
    arch_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    limit_train: int | None = None
    limit_test: int | None = None
    eval_batch_size: int = 1000
    recipe: str | None = dataclasses.field(default=None, metadata={"cli": False})

    def __post_init__(self) -> None:
        from advforge.models import MODELS  # lazy: models imports nothing from training

        if self.arch not in MODELS:
            known = ", ".join(MODELS.names())
            raise InputError(f"unknown model {self.arch!r}; known: {known}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("limit_train", "limit_test"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        check_augment(self.augment)
        for name in ("lr", "momentum", "weight_decay", "lr_gamma"):
            setattr(self, name, _as_float(name, getattr(self, name)))
        _number("lr", self.lr, low=0.0, low_open=True)
        _number("momentum", self.momentum, low=0.0, high=1.0)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("lr_gamma", self.lr_gamma, low=0.0, low_open=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        self.lr_milestones = tuple(self.lr_milestones or ())
        for m in self.lr_milestones:
            _positive_int("lr_milestones entries", m)
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            got = list(self.lr_milestones)
            raise InputError(f"lr_milestones must increase strictly, got {got}")
        if not isinstance(self.arch_kwargs, dict):
            raise InputError(f"arch_kwargs must be a mapping, got {self.arch_kwargs!r}")
        if not isinstance(self.resume, bool):
            raise InputError(f"resume must be true or false, got {self.resume!r}")

    def lr_at(self, epoch: int) -> float:
        """Step schedule: ``lr * lr_gamma ** (number of milestones <= epoch)`` (0-based epoch)."""
        return self.lr * self.lr_gamma ** sum(epoch >= m for m in self.lr_milestones)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-friendly dict (milestones as a list)."""
        d = dataclasses.asdict(self)
        d["lr_milestones"] = list(self.lr_milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. a YAML file), rejecting unknown keys with one line."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def _as_float(name: str, value: object) -> object:
    """YAML reads ``1e-3`` (no dot) as a string; accept numeric strings for float options."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise InputError(f"{name} must be a number, got {value!r}") from None
    return value


def _number(
    name: str, value: object, *, low: float, high: float | None = None, low_open: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(f"{name} must be a number, got {value!r}")
    if value < low or (low_open and value == low) or (high is not None and value >= high):
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
        raise InputError(f"{name} must lie in {bounds}, got {value!r}")
