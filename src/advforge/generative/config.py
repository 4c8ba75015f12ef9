"""Config sections the learned attackers share, and their flat form.

A learned attacker's config is a small tree of dataclasses: :class:`GeneratorConfig` (shared
by AI-GAN, AdvGAN and the learned attackers still to come), :class:`DiscriminatorConfig`,
:class:`TrainingConfig` (optimiser, schedule, evaluation, seed), plus the sections of one
method (AI-GAN's attacker and black-box settings, AdvGAN's objective).

Every leaf also has a *flat* name, unique within its config: the section field's ``flag``
metadata (``g_ch`` for ``generator.ch``) or else its own name (``epochs``). The flat names
are the CLI flags (``--g-ch``), the keys of ``--config`` YAML files, recipes and
``--gan KEY=VALUE``, and the layout in which a run directory records its config (the
"training" entry of config.json and the training state), so run directories written by any
version load and resume alike. :func:`to_flat` and :func:`from_flat` convert.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from advforge.errors import InputError
from advforge.generative.nets import GENERATORS, OUTPUTS

C = TypeVar("C")
SCHEDULES = ("constant", "cosine")


def leaf(default: Any, help: str, flag: str | None = None, **extra: Any) -> Any:
    """A config field with its one-line ``help`` and, when its flat name differs from the
    field's name, the ``flag`` it is known by on the command line and in records."""
    meta = {"help": help, **({"flag": flag} if flag else {}), **extra}
    return dataclasses.field(default=default, metadata=meta)


def section(factory: Any, group: str) -> Any:
    """A nested config section; ``group`` names its argparse group in ``--help``."""
    return dataclasses.field(default_factory=factory, metadata={"group": group})


def check_min(cfg: Any, names: dict[str, str], low: float) -> None:
    """Refuse a field of ``cfg`` below ``low`` (``names``: field -> flat name)."""
    for name, flat in names.items():
        if getattr(cfg, name) < low:
            raise InputError(f"{flat} must be >= {low:g}, got {getattr(cfg, name)}")


def check_positive(cfg: Any, names: dict[str, str]) -> None:
    """Refuse a field of ``cfg`` that is not > 0 (``names``: field -> flat name)."""
    for name, flat in names.items():
        if not getattr(cfg, name) > 0:
            raise InputError(f"{flat} must be > 0, got {getattr(cfg, name)}")


@dataclasses.dataclass
class GeneratorConfig:
    """The perturbation generator (:mod:`.nets`)."""

    arch: str = leaf("unet", "unet (encoder-decoder, U-Net skips) or shuffle (every layer on "
                     "the H/4 grid: faster, less successful)", "g_arch")
    ch: int = leaf(32, "base width (unet: bottleneck 4 x g_ch channels; shuffle: every layer)",
                   "g_ch")
    res_blocks: int = leaf(1, "conditional residual blocks at the bottleneck", "g_res_blocks")
    template: bool = leaf(False, "add a learned per-class template before the output",
                          "g_template")
    skip: bool = leaf(True, "U-Net additive skips from the encoder to the decoder", "g_skip")
    output: str = leaf("box", "box (sigmoid over each pixel's feasible interval) or tanh "
                       "(eps * tanh, then clamp to [0, 1])", "g_output")

    def __post_init__(self) -> None:
        check_min(self, {"ch": "g_ch"}, 1)
        if self.output not in OUTPUTS:
            raise InputError(f"g_output must be one of {OUTPUTS}, got {self.output!r}")
        if self.arch not in GENERATORS:
            raise InputError(f"g_arch must be one of {tuple(GENERATORS)}, got {self.arch!r}")

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~.nets.build_generator` beside the data's shape."""
        return {"ch": self.ch, "res_blocks": self.res_blocks, "template": self.template,
                "skip": self.skip, "output": self.output}


@dataclasses.dataclass
class DiscriminatorConfig:
    """The discriminator D (:class:`~.nets.Discriminator`)."""

    ch: int = leaf(16, "discriminator base width", "d_ch")
    spectral_norm: bool = leaf(False, "spectral normalisation in D")

    def __post_init__(self) -> None:
        check_min(self, {"ch": "d_ch"}, 1)


@dataclasses.dataclass
class TrainingConfig:
    """Optimiser, schedule, final evaluation and seed."""

    epochs: int = leaf(10, "training epochs (a resumed run continues up to this count)")
    batch_size: int = leaf(32, "minibatch size")
    lr: float = leaf(0.002, "Adam learning rate of G and D")
    lr_schedule: str = leaf("cosine", "constant, or cosine decay to 0 over the epochs")
    beta1: float = leaf(0.5, "Adam beta1")
    beta2: float = leaf(0.999, "Adam beta2")
    eval_size: int = leaf(1000, "held-out images for the final success (0 to skip)")
    seed: int = leaf(0, "seeds the networks, batch order, targets and augmentations")

    def __post_init__(self) -> None:
        check_min(self, {"epochs": "epochs", "eval_size": "eval_size"}, 0)
        if self.batch_size < 2:
            raise InputError("batch_size must be >= 2 (batch norm needs two images)")
        check_positive(self, {"lr": "lr"})
        if self.lr_schedule not in SCHEDULES:
            raise InputError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")


def check_eps(eps: float) -> None:
    """The L-inf budget of a learned attacker: in (0, 1] on the [0, 1] scale."""
    if not (0 < eps <= 1 and math.isfinite(eps)):
        raise InputError(f"eps must lie in (0, 1], got {eps}")


# ---------------------------------------------------------------- flat form
def _flat_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag", f.name)


def _is_section(f: dataclasses.Field) -> bool:
    return "group" in f.metadata


def flat_fields(cls: type) -> Iterator[tuple[str | None, dataclasses.Field, type]]:
    """Every leaf of config class ``cls`` as (section field name or None, leaf field, the
    class that declares it), in declaration order."""
    for f in dataclasses.fields(cls):
        if _is_section(f):
            sub = type(f.default_factory())  # type: ignore[misc]
            for g in dataclasses.fields(sub):
                yield f.name, g, sub
        elif f.init:
            yield None, f, cls


def flat_names(cls: type) -> list[str]:
    """The flat names of ``cls``'s leaves (the CLI flags, without dashes)."""
    return [_flat_name(f) for _, f, _ in flat_fields(cls)]


def to_flat(cfg: Any) -> dict[str, Any]:
    """The config as one flat mapping of flat name -> value."""
    out = {}
    for sec, f, _ in flat_fields(type(cfg)):
        owner = getattr(cfg, sec) if sec else cfg
        out[_flat_name(f)] = getattr(owner, f.name)
    return out


def from_flat(cls: type[C], values: Mapping[str, Any]) -> C:
    """Build ``cls`` from flat names (a missing one keeps its default). A key that is not a
    flat name of ``cls`` is refused, so a typo cannot silently train the defaults."""
    where = {_flat_name(f): (sec, f.name) for sec, f, _ in flat_fields(cls)}
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key not in where:
            raise InputError(f"{key!r} is not a field of {cls.__name__}")
        sec, name = where[key]
        if sec is None:
            top[name] = value
        else:
            sections.setdefault(sec, {})[name] = value
    for f in dataclasses.fields(cls):
        if _is_section(f):
            sub = type(f.default_factory())  # type: ignore[misc]
            base = dataclasses.asdict(f.default_factory())  # type: ignore[misc]
            top[f.name] = sub(**{**base, **sections.get(f.name, {})})
    return cls(**top)


def flat_record(cls: type, record: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded config in flat form, whether it was written flat or nested (a section's
    fields under the section's name)."""
    out = {k: v for k, v in record.items() if not isinstance(v, Mapping)}
    sections = {f.name for f in dataclasses.fields(cls) if _is_section(f)}
    for sec, f, _ in flat_fields(cls):
        nested = record.get(sec) if sec in sections else None
        if isinstance(nested, Mapping) and f.name in nested:
            out[_flat_name(f)] = nested[f.name]
    return out


def jsonable(obj: Any) -> Any:
    """Round-trip through JSON so configs with tuples/paths become plain JSON values."""
    return json.loads(json.dumps(obj, default=str))


def with_config_defaults(config_class: type, saved: Mapping[str, Any]) -> dict[str, Any]:
    """``saved`` (a config read back from JSON, flat or nested) in flat form, with every field
    it lacks set to what a run without that field did: the value in the class's ``PREDATED``
    mapping where the field was added with another default than the one it has now (e.g. a
    feature that is on by default but did not exist then), else the default, as JSON values.
    So a run recorded without a field compares equal to one that sets the field to what it
    did."""
    defaults = jsonable(to_flat(config_class()))
    return {**defaults, **getattr(config_class, "PREDATED", {}),
            **flat_record(config_class, saved)}
