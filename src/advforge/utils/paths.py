"""Checks that an output path can be written, made before any compute starts.

A run that trains for an hour and then fails on ``PermissionError`` while writing its report
wastes the hour; every command therefore checks its output paths first and refuses a bad one
with a one-line :class:`~advforge.errors.InputError`. Writability is tested with a real probe
(create and remove a temporary file), so the answer holds for the user running the command,
on read-only mounts, and under ACLs that permission bits alone do not show.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from advforge.errors import InputError


def check_output_dir(path: str | os.PathLike, *, flag: str = "--out") -> Path:
    """A directory to create or reuse.

    Args:
        path: the directory; it need not exist yet (nothing is created here).
        flag: the option name quoted in the error message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``path`` is an existing non-directory, lies under a regular file, or
            cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is an existing file, not a directory")
    _check_creatable(path, flag)
    return path


def check_output_file(
    path: str | os.PathLike, suffix: str | None = None, *, flag: str = "--save"
) -> Path:
    """A new file to write.

    Args:
        path: the file; it must not exist yet.
        suffix: required file name ending (e.g. ``".safetensors"``), or None for any.
        flag: the option name quoted in the error message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``path`` exists, has the wrong suffix, or its directory cannot be created
            or written.
    """
    path = Path(path)
    if suffix is not None and not path.name.endswith(suffix):
        raise InputError(f"{flag} must name a {suffix} file, got {str(path)!r}")
    if path.is_dir():
        raise InputError(f"{flag} {path} is an existing directory, not a new file")
    if path.exists() or path.is_symlink():
        raise InputError(f"{flag} {path} already exists (choose a new name or remove it)")
    _check_creatable(path.parent, flag, shown=path)
    return path


def _check_creatable(directory: Path, flag: str, *, shown: Path | None = None) -> None:
    """Refuse ``directory`` unless it is, or can be created as, a writable directory."""
    shown = directory if shown is None else shown
    existing = directory
    while not existing.exists():  # the nearest ancestor that exists decides
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {shown} lies under {existing}, which is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".advforge-probe-")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{flag} {shown} cannot be written: {existing}: {reason}") from None
    os.close(fd)
    os.unlink(probe)
