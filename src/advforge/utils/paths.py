"""Output paths checked before any compute (placeholder; replaced by the full checks)."""

from __future__ import annotations

from pathlib import Path

from advforge.errors import InputError


def check_output_dir(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"output {path} is a file, not a directory")
    return path
