"""Atomic file writes and safetensors/JSON I/O. Nothing here ever unpickles."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from advforge.errors import CheckpointError


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: ``0o666 & ~umask``.

    ``mkstemp`` creates its file with 0600 whatever the umask; the atomic writers set this
    mode before the rename so a colleague or a web server can read a report when the umask
    allows it.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it, so readers never see
    a half-written file (an interrupted run leaves the previous version intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(obj, indent=2, default=_json_default)
    atomic_write_text(path, text + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object, turning a missing or corrupt file into a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing file {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt JSON in {path}: {exc}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"corrupt JSON in {path}: expected an object")
    return obj


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can span many), or its type
    name when the message is empty: what a one-line CheckpointError quotes."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def save_safetensors(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Atomically save tensors (moved to CPU, made contiguous) as safetensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(cpu, tmp, metadata=metadata)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file on the CPU; missing or corrupt files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing file {path}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"corrupt safetensors file {path}: {first_line(exc)}") from None


def read_state_file(
    path: str | os.PathLike, fmt: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a resumable training state: one safetensors file whose metadata names its format
    (``fmt``) and holds a JSON document under ``"state"`` (safetensors metadata is str -> str).

    Returns:
        The tensors (on the CPU) and the parsed JSON document; nothing is applied anywhere.

    Raises:
        CheckpointError: the file is missing, unreadable, of another format, or its document
            is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state to resume at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"corrupt training state {path}: {first_line(exc)}") from None
    if meta.get("format") != fmt:
        raise CheckpointError(f"{path} is not an advforge training state of format {fmt} "
                              f"(found {meta.get('format')!r})")
    try:
        doc = json.loads(meta["state"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"corrupt training state {path}: bad metadata ({exc})") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"corrupt training state {path}: bad metadata (not an object)")
    return tensors, doc
