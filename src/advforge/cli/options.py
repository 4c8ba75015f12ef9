"""Dataclass configs -> argparse flags, with ``--config run.yaml`` defaults (timm/litgpt style).

Precedence: dataclass default < YAML file < explicit command-line flag. The resolved config is
saved beside the outputs so a run can be repeated exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from advforge.errors import InputError
from advforge.utils.validate import parse_fraction

C = TypeVar("C")
UNSET = object()


def _base_type(annotation: Any) -> Any:
    """Strip ``X | None`` to ``X``; return the annotation otherwise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert a YAML or flag value to the field's type (floats accept ``8/255``)."""
    if value is None:
        return None
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


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one ``--field-name`` flag per dataclass field (help text from field metadata)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=UNSET,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag, dest=f.name, default=UNSET, metavar=f.name.upper(), help=help_text,
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


def build_config(cls: type[C], args: argparse.Namespace, extra: dict[str, Any] | None = None) -> C:
    """Merge defaults < YAML (``args.config``) < flags into ``cls`` and validate it."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    config_path = getattr(args, "config", None)
    if config_path:
        for key, value in read_yaml_config(config_path).items():
            if key not in known:
                raise InputError(f"--config: unknown option {key!r} for this command")
            values[key] = _coerce(value, hints[key], key)
    for key in known:
        value = getattr(args, key, UNSET)
        if value is not UNSET:
            values[key] = _coerce(value, hints[key], key)
    values.update(extra or {})
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(str(exc)) from None


def config_to_yaml(config: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
