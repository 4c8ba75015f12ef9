"""Trained reconstruction autoencoders (AE4DNN, ATN/AAE) as attacks: x_adv = g(x).

An autoencoder rebuilds the image rather than adding a bounded perturbation, so the attack has
no L-inf or L2 budget (``norm = None``, like C&W L2): its size is measured afterwards, and
AE4DNN's criterion (iv) ``||x_adv - x||_2 <= b`` is a count, not a projection.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.errors import CheckpointError, InputError
from advforge.generative.autoencoders import Autoencoder
from advforge.generative.base import RoutedGeneratorAttack
from advforge.utils.modes import model_mode
from advforge.utils.validate import check_images, check_labels, check_targets

RECONSTRUCTION_KINDS = ("ae4dnn", "atn")
# Images per autoencoder call when chunk_size is None. The full-resolution activations of a
# large batch leave the cache; 256 forged 10,000 MNIST examples faster than both the whole
# batch and ChunkedAttack's single-thread 64 on two threads, and as fast on one.
AUTOENCODER_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class AutoencoderAttack(ChunkedAttack):
    """One target's trained autoencoder behind the Attack call.

    Args:
        autoencoder: the trained g (:mod:`advforge.generative.autoencoders`).
        fixed_target: the class g was trained towards.
        num_classes: the target model's class count.
        kind: ``"ae4dnn"`` or ``"atn"`` (recorded in reports).
        max_l2: the run's distance bound b (recorded; the output is not projected).
        source: the run directory it was loaded from, if any.
    """

    name: ClassVar[str] = "autoencoder"
    norm: ClassVar[str | None] = None

    autoencoder: nn.Module
    fixed_target: int
    num_classes: int
    kind: str = "ae4dnn"
    max_l2: float | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.autoencoder, Autoencoder):
            raise InputError(f"autoencoder must be an advforge Autoencoder, got "
                             f"{type(self.autoencoder).__name__}")
        if not 0 <= self.fixed_target < self.num_classes:
            raise InputError(f"fixed_target {self.fixed_target} is not a class of "
                             f"{self.num_classes}")

    @property
    def eps(self) -> None:
        return None  # no budget: see the module docstring

    def __call__(self, model: nn.Module | None, x: torch.Tensor, y: torch.Tensor, *,
                 target: torch.Tensor | int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``g(x)`` for every input (``model`` and ``generator`` are ignored: g was trained
        against its model and is deterministic). ``target`` must be None or g's class."""
        g = self.autoencoder
        check_images(x, channels=g.in_channels)
        if tuple(x.shape[2:]) != (g.image_size, g.image_size):
            raise InputError(f"x has size {tuple(x.shape[2:])}, the autoencoder was trained "
                             f"on {g.image_size}x{g.image_size}")
        device = next(g.parameters()).device
        if x.device != device:
            raise InputError(f"x is on {x.device}, the autoencoder on {device} (use .to())")
        check_labels(y, x.shape[0], self.num_classes)
        t = check_targets(self.fixed_target if target is None else target, y.to(x.device),
                          self.num_classes)
        if bool((t != self.fixed_target).any()):
            raise InputError(f"this {self.kind} autoencoder only attacks towards class "
                             f"{self.fixed_target}")
        return self.perturb(model, x.detach(), y, target=t, generator=generator)

    def perturb(self, model, x, y, *, target, generator):
        g = self.autoencoder
        dtype = next(g.parameters()).dtype
        with torch.no_grad(), model_mode(g, "eval"):
            out = run_in_chunks(lambda xc, _yc, _tc: g(xc.to(dtype)), g,
                                self.chunk_size or AUTOENCODER_CHUNK, x, y, None)
        return out.to(x.dtype).clamp(0.0, 1.0).detach()

    def to(self, device: torch.device | str) -> AutoencoderAttack:
        """Move the autoencoder (in place) and return self."""
        self.autoencoder.to(device)
        return self

    def hyper(self) -> dict[str, Any]:
        return {"kind": self.kind, "fixed_target": self.fixed_target, "max_l2": self.max_l2,
                "source": self.source, "autoencoder": self.autoencoder.arch_kwargs()}


@dataclasses.dataclass(frozen=True)
class RoutedAutoencoderAttack(RoutedGeneratorAttack):
    """One autoencoder per target class behind one attack (``--target all``)."""

    norm: ClassVar[str | None] = None
    kind: str = "ae4dnn"

    @property
    def eps(self) -> None:
        return None


def load_reconstruction(run_dir: Path, cfg: dict[str, Any]
                        ) -> AutoencoderAttack | RoutedAutoencoderAttack:
    """A trained AE4DNN / ATN run directory (one target or ``target_<t>/`` for every one)."""
    from advforge.generative.reconstruction import load_autoencoder

    kind = cfg["kind"]
    try:
        num_classes = int(cfg["num_classes"])
        if cfg.get("target") == "all":
            from advforge.utils.checkpoint import read_json

            subs = {}
            for t, sub in cfg["runs"].items():
                sub_dir = run_dir / sub
                if not sub_dir.is_dir():
                    raise CheckpointError(f"{run_dir} lists {sub} but it is missing")
                subs[int(t)] = load_reconstruction(sub_dir, read_json(sub_dir / "config.json"))
            return RoutedAutoencoderAttack(attacks=subs, num_classes=num_classes, kind=kind,
                                           source=str(run_dir))
        target = int(cfg["target"])
        max_l2 = float(cfg["max_l2"]) if cfg.get("max_l2") is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{run_dir / 'config.json'} lacks a valid entry: {exc}") from None
    return AutoencoderAttack(load_autoencoder(run_dir, cfg), fixed_target=target,
                             num_classes=num_classes, kind=kind, max_l2=max_l2,
                             source=str(run_dir))
