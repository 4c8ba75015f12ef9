"""Trained generators as attacks: :class:`GeneratorAttack`, :class:`RoutedGeneratorAttack`
and :func:`load_attacker`.

A learned attacker is called like every optimisation attack, ``attack(model, x, y, *,
target=None) -> x_adv`` (docs/contract.md). The ``model`` argument is accepted for uniformity and
ignored: the generator learned its target model during training (config.json records which).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from advforge.attacks.base import Attack
from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.attacks.hyper import check_choice
from advforge.errors import CheckpointError, InputError
from advforge.generative.compiled import CompiledForward
from advforge.generative.nets import PerturbationGenerator, generator_class
from advforge.generative.state import CONFIG_FILE, GENERATOR_FILE
from advforge.utils.checkpoint import load_safetensors, read_json
from advforge.utils.modes import model_mode
from advforge.utils.precision import PRECISIONS, lower_precision
from advforge.utils.validate import check_eps, check_images, check_labels, check_targets

KINDS = ("aigan", "advgan", "ae4dnn", "atn")


@dataclasses.dataclass(frozen=True)
class GeneratorAttack(ChunkedAttack):
    """Adapt a trained generator to the Attack call.

    Args:
        generator: a :class:`~advforge.generative.nets.PerturbationGenerator` (U-Net or
            shuffle); conditional (AI-GAN, G(x, t)) or unconditional (AdvGAN, G(x) for one
            fixed target).
        eps: L-inf budget; None uses the generator's own. A smaller eps clips G's output.
        fixed_target: the class an unconditional generator was trained for (required for it).
        num_classes: the target model's class count (needed for an unconditional generator).
        kind: ``"aigan"`` or ``"advgan"`` (recorded in reports).
        source: the run directory it was loaded from, if any.
        chunk_size: images per generator call; None = automatic (64 per thread on a CPU,
            where cache-sized chunks forge 1,000 MNIST examples about twice as fast; see
            :mod:`advforge.attacks.chunking`).
        precision: "float32" (the reference path) or "bfloat16": the network runs under a
            bfloat16 autocast where the device runs it natively
            (:mod:`advforge.utils.precision`; float32 elsewhere), its squashing and the eps
            clamp in float32, so the bound holds exactly either way. A trained run records
            the precision its success was measured in (config.json "inference") and
            :func:`load_attacker` serves that one.
        compiled: run the network through ``torch.compile`` (:mod:`advforge.generative.compiled`):
            faster for bulk forging after a compilation of seconds on the first call; where
            compiling fails it runs eagerly, with a warning.

    Example:
        >>> attack = GeneratorAttack(generator, 0.3)
        >>> x_adv = attack(model, x, y, target=torch.full_like(y, 3))
    """

    name: ClassVar[str] = "generator"
    norm: ClassVar[str | None] = "linf"

    generator: nn.Module
    eps: float | None = None
    fixed_target: int | None = None
    num_classes: int | None = None
    kind: str = "aigan"
    source: str | None = None
    precision: str = "float32"
    compiled: bool = False
    _forward: Callable[..., torch.Tensor] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()  # chunk_size
        check_choice(self.precision, "precision", PRECISIONS)
        if not isinstance(self.compiled, bool):
            raise InputError(f"compiled must be true or false, got {self.compiled!r}")
        if not isinstance(self.generator, PerturbationGenerator):
            raise InputError(f"generator must be a PerturbationGenerator, got "
                             f"{type(self.generator).__name__}")
        if self.eps is None:
            object.__setattr__(self, "eps", self.generator.eps)
        check_eps(self.eps, "eps")
        k = self.generator.num_classes
        if k is not None:
            if self.fixed_target is not None:
                raise InputError("a conditional generator takes the target per call, not fixed")
            object.__setattr__(self, "num_classes", k)
        elif self.fixed_target is None or self.num_classes is None:
            raise InputError("an unconditional generator needs fixed_target and num_classes")
        elif not 0 <= self.fixed_target < self.num_classes:
            raise InputError(f"fixed_target {self.fixed_target} is not a class of "
                             f"{self.num_classes}")
        object.__setattr__(self, "_forward",
                           CompiledForward(self.generator) if self.compiled else self.generator)

    def __call__(
        self, model: nn.Module | None, x: torch.Tensor, y: torch.Tensor, *,
        target: torch.Tensor | int | None = None, generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Forge ``x_adv`` for ``x`` (labels ``y``) towards ``target`` in one forward pass.

        Args:
            model: ignored (the generator is tied to the model it was trained against).
            x: (B, C, H, W) images in [0, 1].
            y: (B,) true labels.
            target: (B,) classes or an int; required for AI-GAN; for AdvGAN None or the
                generator's fixed target.
            generator: ignored (a trained generator is deterministic).

        Returns:
            x_adv: (B, C, H, W), same dtype and device as ``x``, within eps of x, in [0, 1].
        """
        t = self._validate(x, y, target)
        return self.perturb(model, x.detach(), y, target=t, generator=generator)

    def _validate(self, x: torch.Tensor, y: torch.Tensor, target: Any) -> torch.Tensor:
        g = self.generator
        check_images(x, channels=g.in_channels)
        if tuple(x.shape[2:]) != (g.image_size, g.image_size):
            raise InputError(f"x has size {tuple(x.shape[2:])}, the generator was trained on "
                             f"{g.image_size}x{g.image_size}")
        device = next(g.parameters()).device
        if x.device != device:
            raise InputError(f"x is on {x.device}, the generator on {device} (use .to())")
        check_labels(y, x.shape[0], self.num_classes)
        if target is None:
            if self.fixed_target is None:
                raise InputError(f"{self.kind} is a targeted attack: pass target=")
            target = self.fixed_target
        t = check_targets(target, y.to(x.device), self.num_classes)
        if self.fixed_target is not None and bool((t != self.fixed_target).any()):
            raise InputError(f"this {self.kind} generator only attacks towards class "
                             f"{self.fixed_target}")
        return t

    def perturb(self, model, x, y, *, target, generator):
        g, net = self.generator, self._forward
        dtype = next(g.parameters()).dtype
        cond = target if g.num_classes is not None else None
        with (torch.no_grad(), model_mode(g, "eval"),
              lower_precision(self.precision, x.device)):
            delta = run_in_chunks(lambda xc, _yc, tc: net(xc.to(dtype), tc), g,
                                  self.chunk_size, x, y, cond)  # (B, C, H, W)
        delta = delta.to(x.dtype).clamp(-self.eps, self.eps)
        return (x + delta).clamp(0.0, 1.0).detach()

    def to(self, device: torch.device | str) -> GeneratorAttack:
        """Move the generator (in place) and return self."""
        self.generator.to(device)
        return self

    def hyper(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps, "fixed_target": self.fixed_target,
                "source": self.source, "precision": self.precision, "compiled": self.compiled,
                "generator": self.generator.arch_kwargs()}


@dataclasses.dataclass(frozen=True)
class RoutedGeneratorAttack(Attack):
    """One AdvGAN generator per target class behind one attack: each input goes to the
    generator of its target (``advforge train-attacker advgan --target all``)."""

    name: ClassVar[str] = "generator"
    norm: ClassVar[str | None] = "linf"

    attacks: dict[int, GeneratorAttack]
    num_classes: int
    kind: str = "advgan"
    source: str | None = None

    @property
    def eps(self) -> float:
        return max(a.eps for a in self.attacks.values())

    def __call__(self, model, x, y, *, target=None, generator=None) -> torch.Tensor:
        check_images(x)
        check_labels(y, x.shape[0], self.num_classes)
        if target is None:
            raise InputError("a per-target AdvGAN set needs target= to pick a generator")
        t = check_targets(target, y.to(x.device), self.num_classes)
        missing = sorted(set(t.unique().tolist()) - set(self.attacks))
        if missing:
            raise InputError(f"no generator for target(s) {missing}; trained: "
                             f"{sorted(self.attacks)}")
        return self.perturb(model, x.detach(), y, target=t, generator=generator)

    def perturb(self, model, x, y, *, target, generator):
        x_adv = x.clone()
        for c in target.unique().tolist():
            m = target == c
            x_adv[m] = self.attacks[c](model, x[m], y[m], target=int(c))
        return x_adv

    def to(self, device: torch.device | str) -> RoutedGeneratorAttack:
        for a in self.attacks.values():
            a.to(device)
        return self

    def hyper(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps, "targets": sorted(self.attacks),
                "source": self.source}


def _load_generator(run_dir: Path, cfg: dict[str, Any]) -> PerturbationGenerator:
    try:
        kwargs = cfg["generator"]["kwargs"]
        # runs from before the shuffle generator name no class: they are U-Nets
        generator = generator_class(cfg["generator"].get("class", "Generator"))(**kwargs)
    except (KeyError, TypeError, InputError) as exc:
        msg = f"{run_dir / CONFIG_FILE} has no valid generator entry: {exc}"
        raise CheckpointError(msg) from None
    weights = load_safetensors(run_dir / GENERATOR_FILE)
    try:
        generator.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = lines[1 if len(lines) > 1 else 0].strip()
        msg = f"{run_dir / GENERATOR_FILE} does not fit its config: {first}"
        raise CheckpointError(msg) from None
    return generator.eval()


def load_attacker(run_dir: str | Path, *, compiled: bool = False) -> Attack:
    """Load a trained AI-GAN, AdvGAN, AE4DNN or ATN run directory as an attack (on the CPU;
    ``.to()`` it). ``compiled``: a generator runs through ``torch.compile`` (see
    :class:`GeneratorAttack`; AE4DNN and ATN autoencoders run eagerly).

    Raises:
        CheckpointError: the directory, its config.json or its weights are missing, corrupt
            or inconsistent.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"no attacker run directory at {run_dir}")
    cfg = read_json(run_dir / CONFIG_FILE)
    kind = cfg.get("kind")
    if kind not in KINDS:
        raise CheckpointError(f"{run_dir} is not a learned-attacker run (kind {kind!r})")
    if kind in ("ae4dnn", "atn"):  # reconstruction autoencoders: x_adv = g(x), no budget
        from advforge.generative.ae_attack import load_reconstruction

        return load_reconstruction(run_dir, cfg)
    try:
        eps, num_classes = float(cfg["eps"]), int(cfg["num_classes"])
        if cfg.get("target") == "all":
            subs = {int(t): load_attacker(run_dir / sub, compiled=compiled)
                    for t, sub in cfg["runs"].items()}
            return RoutedGeneratorAttack(attacks=subs, num_classes=num_classes, kind=kind,
                                         source=str(run_dir))
        fixed = None if kind == "aigan" else int(cfg["target"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{run_dir / CONFIG_FILE} lacks a valid entry: {exc}") from None
    inference = cfg.get("inference") or {}
    precision = inference.get("precision", "float32") if isinstance(inference, dict) else None
    if precision not in PRECISIONS:
        raise CheckpointError(f"{run_dir / CONFIG_FILE} names an unknown inference precision "
                              f"{precision!r}")
    return GeneratorAttack(_load_generator(run_dir, cfg), eps, fixed_target=fixed,
                           num_classes=num_classes, kind=kind, source=str(run_dir),
                           precision=precision, compiled=compiled)
