"""Flags of ``train-attacker``: the nested attacker config seen flat, in argparse groups.

A learned attacker's config is a tree of small dataclasses
(:mod:`advforge.generative.config`); on the command line, in ``--config`` YAML files and in
recipes every leaf keeps its flat name (``--g-ch``, ``--epochs``, ``--black-box``).
:func:`flat_view` builds a flat dataclass of those names (defaults and one-line helps from
the nested fields) that ``cli.options`` turns into flags and builds from YAML and flags;
:func:`add_attacker_flags` lists the flags in ``--help`` by section.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing

from advforge.cli.options import add_dataclass_flags

RUN_GROUP = ("run", "what to attack, with which data, and where the run goes")

# Section group -> description in --help, in display order; top-level leaves join "training".
GROUPS = {
    "generator": "the perturbation generator G",
    "autoencoder": "the autoencoder g whose reconstruction is the adversarial example",
    "discriminator/attacker": "the discriminator D and (AI-GAN) the PGD attacker A of Eq. 7",
    "black-box": "AI-GAN against a query-only target: a distilled local model (Sec. V-D)",
    "training": "budget, objective, pre-training, optimiser and schedule",
}


def _leaves(cls: type) -> list[tuple[str, str, dataclasses.Field, typing.Any, typing.Any]]:
    """(group, flat name, leaf field, type, default) of every leaf of config class ``cls``."""
    from advforge.generative.config import flat_fields

    out = []
    defaults = cls()
    for sec, f, owner in flat_fields(cls):
        group = "training"
        if sec is not None:
            group = next(g.metadata["group"] for g in dataclasses.fields(cls) if g.name == sec)
        value = getattr(getattr(defaults, sec) if sec else defaults, f.name)
        hint = typing.get_type_hints(owner)[f.name]
        out.append((group, f.metadata.get("flag", f.name), f, hint, value))
    return out


@functools.cache
def flat_view(cls: type, group: str | None = None) -> type:
    """A flat dataclass with one field per leaf of ``cls`` (only ``group``'s if given), named
    by its flat name, with the nested default and help."""
    fields = [(name, hint, dataclasses.field(default=value, metadata={"help": f.metadata.get(
        "help", "")})) for g, name, f, hint, value in _leaves(cls) if group in (None, g)]
    suffix = "".join(w.title() for w in (group or "").replace("/", " ").replace("-", " ").split())
    return dataclasses.make_dataclass(f"{cls.__name__}Flat{suffix}", fields)


def add_attacker_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argparse group per section of ``cls`` (generator, discriminator/attacker,
    black-box, training), each flag with its flat name, one-line help and default."""
    present = {g for g, *_ in _leaves(cls)}
    for group, description in GROUPS.items():
        if group in present:
            add_dataclass_flags(parser.add_argument_group(group, description),
                                flat_view(cls, group))
