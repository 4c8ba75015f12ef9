"""Dataclass configs -> argparse flags, with ``--config run.yaml`` defaults (timm/litgpt style).

Precedence: dataclass default < recipe (``advforge.models.recipes``) < YAML file < explicit
command-line flag. The resolved config is saved beside the outputs so a run can be repeated
exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from advforge.errors import InputError
from advforge.utils.validate import parse_fraction

C = TypeVar("C")
UNSET = object()
_CONFIG_FIELDS = "_config_fields"  # parser default: the fields --config may set


def _base_type(annotation: Any) -> Any:
    """Strip ``X | None`` to ``X``; return the annotation otherwise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def _union_members(annotation: Any) -> list[Any]:
    """The non-None members of a union annotation (``int | str`` -> [int, str]), else []."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return []


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert a YAML or flag value to the field's type (floats accept ``8/255``). A union
    such as ``int | str`` (a class index or ``"all"``) takes the first member that reads the
    value, in the order written."""
    if value is None:
        return None
    members = _union_members(annotation)
    if len(members) > 1:
        for member in members:
            try:
                return _coerce(value, member, name)
            except InputError:
                continue
        raise InputError(f"--{name.replace('_', '-')}: cannot read {value!r}")
    kind = _base_type(annotation)
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is float:
            return parse_fraction(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if origin in (list, tuple):
            (item,) = typing.get_args(kind)[:1] or (str,)
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [v.strip() if isinstance(v, str) else v for v in items]
            return [_coerce(v, item, name) for v in items if v != ""]
        if kind is dict or origin is dict:
            return _parse_mapping(value)
        return str(value) if kind is str else value
    except (ValueError, TypeError):
        raise InputError(f"--{name.replace('_', '-')}: cannot read {value!r}") from None


def _parse_mapping(value: Any) -> dict[str, Any]:
    """A mapping from YAML, or ``key=value,key=value`` from a flag (values parsed as numbers
    or booleans where they look like one)."""
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, str):
        raise ValueError(value)
    out: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(pair)
        out[key.strip()] = yaml.safe_load(raw)
    return out


def docstring_attributes(cls: type) -> dict[str, str]:
    """Field descriptions from the ``Attributes:`` section of a Google-style class docstring.

    An entry is ``name: text`` or ``name_a, name_b: text`` (the text then describes each of
    them) at the section's first indentation; deeper-indented lines continue it, and a
    blank or shallower line ends the section. Sphinx roles (``:mod:`.nets```) are reduced to
    their target so the text reads well in ``--help``.
    """
    lines = (cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    entries: list[tuple[list[str], list[str]]] = []
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        names, sep, text = line.strip().partition(": ")
        if depth == indent and sep and all(n.strip().isidentifier() for n in names.split(",")):
            entries.append(([n.strip() for n in names.split(",")], [text]))
        elif entries:
            entries[-1][1].append(line.strip())
    out = {}
    for names, text in entries:
        out.update(dict.fromkeys(names, plain_help(" ".join(text))))
    return out


def _name_lists() -> dict[str, str]:
    """Flags whose value is a registered name, and the names to list in their help."""
    from advforge import attacks, data, models
    from advforge.generative.base import KINDS

    attack_names = ", ".join(attacks.names()) + "; learned: " + ", ".join(
        f"{k}=RUN_DIR" for k in KINDS)
    return {"attack": attack_names, "attacks": attack_names, "arch": ", ".join(models.names()),
            "dataset": ", ".join(data.names())}


# References that mean something in the source but nothing in a terminal: a pointer to a module
# docstring or to a relative module, as a whole parenthesis or as a trailing clause.
_SOURCE_REFERENCES = (
    re.compile(r"\s*\((?:see|in) (?:the module docstring|\.[\w.]+)[^)]*\)"),
    re.compile(r"[;,]\s*(?:see|in) (?:the module docstring|\.[\w.]+)[^;.)]*"),
)


def plain_help(text: str) -> str:
    """``text`` as plain terminal prose: Sphinx roles reduced to their target, double
    backticks dropped, and pointers into the source (module docstrings, ``.nets``) removed."""
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text).replace("``", "")
    for pattern in _SOURCE_REFERENCES:
        text = pattern.sub("", text)
    return text


def _help(f: dataclasses.Field, described: dict[str, str], names: dict[str, str]) -> str:
    """A flag's help: the field's ``help`` metadata, else its docstring entry; the valid
    names when the value is a registered name; and the default, unless the text already says
    what happens by default or there is none (``%`` escaped for argparse)."""
    text = plain_help(f.metadata.get("help") or described.get(f.name, "")).strip()
    if f.name in names and f.metadata.get("names", True):
        text = f"{text.rstrip('.')}; one of: {names[f.name]}" if text else names[f.name]
    has_default = f.default is not dataclasses.MISSING and f.default is not None
    if has_default and not re.search(r"\bdefault\b\s*[:(]?\s*\w", text, re.IGNORECASE):
        shown = f.default if not isinstance(f.default, tuple) else list(f.default)
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    return text.replace("%", "%%")


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one ``--field-name`` flag per dataclass field (plus any ``aliases`` its metadata
    lists); its help text comes from the field's metadata or the class docstring's
    ``Attributes:`` entry, with the default appended.

    A subcommand can carry the flags of several configs (train-attacker: its run options and
    the attacker's); the parser records all their fields, so one ``--config`` file may set
    any of them and each config picks its own."""
    hints = typing.get_type_hints(cls)
    described = docstring_attributes(cls)
    names = _name_lists()
    # Every config of this subcommand takes its options from the one --config file.
    accepted = parser.get_default(_CONFIG_FIELDS) or frozenset()
    parser.set_defaults(**{_CONFIG_FIELDS: accepted | {f.name for f in dataclasses.fields(cls)}})
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        kind = _base_type(hints[f.name])
        help_text = _help(f, described, names)
        if kind is bool:
            parser.add_argument(
                *flags, dest=f.name, action=argparse.BooleanOptionalAction, default=UNSET,
                help=help_text,
            )
        else:
            parser.add_argument(
                *flags, dest=f.name, default=UNSET, metavar=f.name.upper(), help=help_text,
                **({"choices": f.metadata["choices"]} if "choices" in f.metadata else {}),
            )


def read_yaml_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--config: no such file {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"--config: {path} is not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise InputError(f"--config: {path} must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def given_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The values of ``cls``'s fields that the ``--config`` YAML file and the explicit flags
    set (flags win), coerced to the fields' types; unset fields are absent."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    config_path = getattr(args, "config", None)
    if config_path:
        accepted = getattr(args, _CONFIG_FIELDS, None) or known
        for key, value in read_yaml_config(config_path).items():
            if key not in accepted:
                raise InputError(f"--config: unknown option {key!r} for this command")
            if key in known:
                values[key] = _coerce(value, hints[key], key)
    for key in known:
        value = getattr(args, key, UNSET)
        if value is not UNSET:
            values[key] = _coerce(value, hints[key], key)
    return values


def build_config(cls: type[C], args: argparse.Namespace, extra: dict[str, Any] | None = None,
                 *, recipe: Mapping[str, Any] | None = None) -> C:
    """Merge defaults < ``recipe`` < YAML (``args.config``) < flags < ``extra`` into ``cls``
    and validate it.

    Args:
        cls: the command's config dataclass.
        args: parsed flags (unset ones are :data:`UNSET`).
        extra: values the command imposes over everything (e.g. ``--dry-run``'s tiny
            settings).
        recipe: a recipe's settings; only the keys that are fields of ``cls`` apply (one
            recipe can span two configs, e.g. an attacker's and its run options).
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {k: _coerce(v, hints[k], k) for k, v in (recipe or {}).items() if k in known}
    values.update(given_values(cls, args))
    values.update(extra or {})
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(str(exc)) from None


def config_to_yaml(config: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
