"""CIFAR-10/100 python batches: tiny files in the official format read back exactly, and the
restricted unpickler refuses anything beyond NumPy array reconstruction without running it."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess

import numpy as np
import pytest
import torch

from advforge import data
from advforge.data.safe_pickle import safe_load
from advforge.errors import DatasetNotFoundError, InputError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(rng: np.random.Generator, n: int, k: int, label_key: bytes) -> dict:
    return {
        b"batch_label": b"training batch",
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, k, size=n)],
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def write_cifar10(root, *, n: int = 3, seed: int = 0, protocol: int = 2) -> dict[str, dict]:
    """The six batch files and batches.meta, as pickle.dump of bytes-keyed dicts."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    files = {f"data_batch_{i}": _batch(rng, n, 10, b"labels") for i in range(1, 6)}
    files["test_batch"] = _batch(rng, n + 1, 10, b"labels")
    for name, d in files.items():
        (root / name).write_bytes(pickle.dumps(d, protocol=protocol))
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return files


def _as_uint8(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_round_trip_is_exact(tmp_path, protocol):
    files = write_cifar10(tmp_path, protocol=protocol)
    splits = data.load("cifar10", tmp_path)
    train_data = np.concatenate([files[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    train_y = sum((files[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    # Row layout: 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane.
    assert splits.train.x.dtype == torch.float32 and splits.train.x.shape == (15, 3, 32, 32)
    np.testing.assert_array_equal(_as_uint8(splits.train.x), train_data.reshape(15, 3, 32, 32))
    assert splits.train.x[4, 1, 2, 5].item() == train_data[4, 1024 + 2 * 32 + 5] / np.float32(255)
    assert splits.train.y.dtype == torch.int64 and splits.train.y.tolist() == train_y
    np.testing.assert_array_equal(
        _as_uint8(splits.test.x), files["test_batch"][b"data"].reshape(-1, 3, 32, 32)
    )
    assert splits.class_names == CLASSES and splits.num_classes == 10
    assert splits.default_eps == pytest.approx(8 / 255) and splits.in_channels == 3
    assert splits.image_size == (32, 32) and len(splits.mean) == 3


def _str(b: bytes) -> bytes:
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
    return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)


def _py2_value(v) -> bytes:
    if isinstance(v, bytes):
        return _str(v)
    if isinstance(v, int):
        return _int(v)
    if isinstance(v, list):
        return b"](" + b"".join(_py2_value(e) for e in v) + b"e"
    # numpy.ndarray as Python 2 NumPy wrote it: _reconstruct + BUILD(version, shape, dtype, ...)
    shape = b"(" + b"".join(_int(s) for s in v.shape) + b"t"
    dtype = b"cnumpy\ndtype\n" + _str(b"u1") + _int(0) + _int(1) + b"\x87R"
    dtype += b"(" + _int(3) + _str(b"|") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb"
    head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _int(0) + b"\x85"
    raw = _str(v.tobytes())  # the array bytes as a Python 2 str
    return head + _str(b"b") + b"\x87R(" + _int(1) + shape + dtype + b"\x89" + raw + b"tb"


def py2_pickle(d: dict) -> bytes:
    """Byte-for-byte what Python 2's cPickle protocol 2 wrote for the official batches
    (str -> SHORT_BINSTRING/BINSTRING, ``numpy.core.multiarray`` module path)."""
    body = b"".join(_str(k) + _py2_value(v) for k, v in d.items())
    return b"\x80\x02}(" + body + b"u."


def test_reads_python2_style_batches(tmp_path):
    files = write_cifar10(tmp_path)
    for name, d in files.items():  # overwrite every file with the Python 2 byte layout
        (tmp_path / name).write_bytes(py2_pickle(d))
    (tmp_path / "batches.meta").write_bytes(
        py2_pickle({b"label_names": [c.encode() for c in CLASSES]})
    )
    splits = data.load("cifar10", tmp_path)
    np.testing.assert_array_equal(
        _as_uint8(splits.test.x), files["test_batch"][b"data"].reshape(-1, 3, 32, 32)
    )
    assert splits.test.y.tolist() == files["test_batch"][b"labels"]
    assert splits.class_names == CLASSES


def test_cifar10_found_in_archive_folder_and_via_env(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "cifar10" / "cifar-10-batches-py")
    assert len(data.load("cifar10", tmp_path / "cifar10").train) == 15  # the unpacked archive dir
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert len(data.load("cifar10").test) == 4


@pytest.mark.parametrize("label_type,k", [("fine", 100), ("coarse", 20)])
def test_cifar100_round_trip(tmp_path, label_type, k):
    rng = np.random.default_rng(1)
    train = {
        b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8),
        b"fine_labels": [0, 99, 5, 7, 50, 1],
        b"coarse_labels": [0, 19, 3, 4, 2, 1],
    }
    test = {
        b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
        b"fine_labels": [3, 4],
        b"coarse_labels": [5, 6],
    }
    meta = {
        b"fine_label_names": [f"f{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"c{i}".encode() for i in range(20)],
    }
    for name, d in {"train": train, "test": test, "meta": meta}.items():
        (tmp_path / name).write_bytes(pickle.dumps(d, protocol=2))
    splits = data.load("cifar100", tmp_path, label_type=label_type)
    assert splits.num_classes == k and splits.class_names[1] == f"{label_type[0]}1"
    assert splits.train.y.tolist() == train[f"{label_type}_labels".encode()]
    np.testing.assert_array_equal(_as_uint8(splits.train.x), train[b"data"].reshape(6, 3, 32, 32))
    with pytest.raises(InputError, match="label_type"):
        data.load("cifar100", tmp_path, label_type="medium")


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


@pytest.mark.parametrize("gadget", [_SystemCall, _Popen, _Eval])
def test_malicious_pickle_is_refused_without_running(tmp_path, gadget):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    payload = {b"data": gadget(marker), b"labels": [0]}
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(data.DatasetFormatError, match=r"data_batch_3.*refused global") as err:
        data.load("cifar10", tmp_path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_refuses_codecs_other_than_latin1(tmp_path):
    # _codecs.encode is admitted only for the latin-1 bytes of protocol-2 pickles.
    evil = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    assert pickle.loads(evil) == "n"  # plain pickle runs the codec
    (tmp_path / "f").write_bytes(evil)
    with pytest.raises(data.DatasetFormatError, match="encoding 'rot13'"):
        safe_load(tmp_path / "f")


def test_truncated_and_garbage_batches_name_the_file(tmp_path):
    write_cifar10(tmp_path)
    good = (tmp_path / "test_batch").read_bytes()
    (tmp_path / "test_batch").write_bytes(good[: len(good) // 2])
    with pytest.raises(data.DatasetFormatError, match=r"test_batch: truncated or corrupt pickle"):
        data.load("cifar10", tmp_path)
    (tmp_path / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(data.DatasetFormatError, match="test_batch"):
        data.load("cifar10", tmp_path)


def test_wrong_array_shape_or_labels_are_rejected(tmp_path):
    write_cifar10(tmp_path)
    bad = {b"data": np.zeros((2, 1024), dtype=np.uint8), b"labels": [0, 1]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(data.DatasetFormatError, match="data_batch_1.*3072"):
        data.load("cifar10", tmp_path)
    bad = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 10]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(data.DatasetFormatError, match=r"data_batch_1: labels outside \[0, 10\)"):
        data.load("cifar10", tmp_path)


def test_missing_cifar_names_paths_and_how_to_get_it(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_5").unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        data.load("cifar10", tmp_path)
    msg = str(err.value)
    assert "'cifar10'" in msg and str(tmp_path) in msg and "cifar-10-batches-py" in msg
    assert "python version" in msg and "data_batch_1..5" in msg and "\n" not in msg
