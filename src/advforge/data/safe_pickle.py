"""A restricted unpickler for the official CIFAR "python version" batches.

Those files are Python 2 pickles (protocol 2) of a dict holding a NumPy uint8 array and lists.
Plain ``pickle.load`` would run whatever callable a tampered file names (``os.system`` ...), so
``find_class`` here admits only the handful of globals that NumPy array reconstruction needs and
refuses everything else *before* anything is called. Containers (dict, list, tuple), numbers and
strings need no globals and load as usual.

Python 2 ``str`` objects are read as ``bytes`` (``encoding="bytes"``, as the CIFAR page says), so
dict keys are ``b"data"``, ``b"labels"`` etc.; files re-saved from Python 3 with str keys also load.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from advforge.data.catalog import DatasetFormatError

_np_core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed numpy.core to numpy._core


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to latin-1: how protocol-2 pickles written by Python 3
    store bytes (the array data); any other codec could be a transformation we do not want."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise RefusedGlobalError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


# (module, name) pairs as written by NumPy 1.x (numpy.core) and 2.x (numpy._core).
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _np_core.multiarray._reconstruct
    _ALLOWED[(f"{_mod}.multiarray", "scalar")] = _np_core.multiarray.scalar
    _ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _np_core.numeric._frombuffer


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a callable or class outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` only returns NumPy array-building globals."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"refused global {module}.{name} (only NumPy array reconstruction is allowed)"
            ) from None


def safe_load(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`.

    Raises:
        DatasetFormatError: the file names a forbidden global, is truncated, or is not a pickle;
            the one-line message names the file.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobalError as err:
        raise DatasetFormatError(f"{path}: unsafe pickle: {err}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
    ) as err:
        raise DatasetFormatError(
            f"{path}: truncated or corrupt pickle ({type(err).__name__}: {err})"
        ) from None
