"""User factories: ``"package.module:callable"`` names the code that builds a user's own network.

A factory is called with no arguments and returns an ``nn.Module`` that maps (B, C, H, W)
images in [0, 1] (or normalised ones, with the mean/std recorded beside it) to (B, K) logits.
The module is imported the way ``python -m`` would find it: with the current working directory
first on ``sys.path``. Importing a module runs its code, so a run directory that names a
factory is as trustworthy as the package it names; the weights themselves still come only from
safetensors.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator

from torch import nn

from advforge.errors import InputError
from advforge.utils.checkpoint import first_line

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SPEC = re.compile(rf"^({_NAME}(?:\.{_NAME})*):({_NAME}(?:\.{_NAME})*)$")


def parse_factory_spec(spec: object) -> tuple[str, str]:
    """Split ``"package.module:callable"`` into the module path and the attribute path.

    Raises:
        InputError: ``spec`` is not of that form (dotted Python names on both sides).
    """
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise InputError(f"factory must look like package.module:callable, got {spec!r}")
    return match.group(1), match.group(2)


@contextlib.contextmanager
def cwd_on_path() -> Iterator[str]:
    """The current working directory first on ``sys.path`` for the duration (as ``python -m``
    puts it there), so a user's package in it imports; the path is restored afterwards."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a package written since the process started is found
    try:
        yield cwd
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def resolve_factory(spec: str) -> Callable[[], object]:
    """Import the callable that ``spec`` names (current directory first on ``sys.path``).

    Raises:
        InputError: bad syntax, the module cannot be imported (its error's first line is
            quoted), the attribute is missing, or it is not callable.
    """
    module_name, attr_path = parse_factory_spec(spec)
    with cwd_on_path() as cwd:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or whatever the module's own code raises
            raise InputError(
                f"factory {spec!r}: cannot import {module_name!r} from {cwd} or the installed "
                f"packages ({type(exc).__name__}: {first_line(exc)})"
            ) from None
    target: object = module
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise InputError(f"factory {spec!r}: {module_name!r} has no attribute {attr_path!r}")
        target = getattr(target, part)
    if not callable(target):
        raise InputError(f"factory {spec!r}: {attr_path!r} is a {type(target).__name__}, "
                         "not a callable")
    return target


def build_from_factory(spec: str) -> nn.Module:
    """Import ``spec``, call it with no arguments and check that it returns an ``nn.Module``.

    Returns:
        The module the factory built, in whatever train/eval mode it chose.

    Raises:
        InputError: the spec cannot be resolved, the call raises (its first line is quoted),
            or it returns something other than an ``nn.Module``.
    """
    factory = resolve_factory(spec)
    with cwd_on_path():  # the factory may import more of the user's code
        try:
            net = factory()
        except (Exception, SystemExit) as exc:  # user code: any failure becomes one line
            raise InputError(
                f"factory {spec!r} raised {type(exc).__name__} when called with no arguments: "
                f"{first_line(exc)}"
            ) from None
    if not isinstance(net, nn.Module):
        raise InputError(f"factory {spec!r} returned a {type(net).__name__}, not a "
                         "torch.nn.Module")
    return net
