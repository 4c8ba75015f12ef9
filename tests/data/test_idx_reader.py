"""IDX files (MNIST / Fashion-MNIST): tiny files written byte by byte, gz and plain, read back
exactly; corrupt files fail with a message naming the file; the real Debian files if present."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from advforge import data
from advforge.data.idx import read_idx
from advforge.errors import DatasetNotFoundError

TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Magic (0, 0, type, ndim), big-endian uint32 sizes, then big-endian values."""
    magic = bytes([0, 0, TYPE_CODES[arr.dtype], arr.ndim])
    sizes = struct.pack(f">{arr.ndim}I", *arr.shape)
    return magic + sizes + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, *, gz: bool) -> None:
    raw = idx_bytes(arr)
    path.write_bytes(gzip.compress(raw) if gz else raw)


def write_mnist_dir(root: Path, *, gz: bool, dotted: bool = False, seed: int = 0) -> dict:
    """Four tiny IDX files: 7 train and 3 test 28x28 images."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 7, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([9, 0, 4], dtype=np.uint8),
    }
    root.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        write_idx(root / (f"{name}.gz" if gz else name), arr, gz=gz)
    return arrays


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True)])
def test_mnist_round_trip_is_exact(tmp_path, gz, dotted):
    arrays = write_mnist_dir(tmp_path, gz=gz, dotted=dotted)
    splits = data.load("mnist", tmp_path)
    assert splits.train.x.shape == (7, 1, 28, 28) and splits.train.x.dtype == torch.float32
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().div(255).unsqueeze(1)
    assert torch.equal(splits.train.x, expected)  # bit-exact value / 255
    assert splits.train.y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert splits.test.y.dtype == torch.int64 and splits.test.y.tolist() == [9, 0, 4]
    assert splits.class_names == [str(d) for d in range(10)] and splits.default_eps == 0.3
    assert splits.in_channels == 1 and splits.image_size == (28, 28)


def test_fashion_mnist_reads_a_given_directory(tmp_path):
    arrays = write_mnist_dir(tmp_path, gz=True, seed=3)
    splits = data.load("fashion-mnist", tmp_path)
    assert splits.name == "fashion-mnist" and splits.class_names[0] == "T-shirt/top"
    assert splits.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(
        (splits.test.x[:, 0] * 255).round().byte().numpy(), arrays["t10k-images-idx3-ubyte"]
    )


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_read_idx_handles_big_endian_types(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) * 3
    write_idx(tmp_path / "a", arr, gz=False)
    out = read_idx(tmp_path / "a")
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_truncated_and_corrupt_idx_name_the_file(tmp_path):
    arrays = write_mnist_dir(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(arrays["train-images-idx3-ubyte"])[:-10])
    with pytest.raises(data.DatasetFormatError, match=r"train-images-idx3-ubyte: truncated") as e:
        data.load("mnist", tmp_path)
    assert "\n" not in str(e.value)
    path.write_bytes(b"\x08\x03\x00\x00" + b"\x00" * 50)
    with pytest.raises(data.DatasetFormatError, match="train-images-idx3-ubyte: not an IDX file"):
        data.load("mnist", tmp_path)
    path.write_bytes(gzip.compress(idx_bytes(arrays["train-images-idx3-ubyte"]))[:-30])
    with pytest.raises(data.DatasetFormatError, match="train-images-idx3-ubyte: corrupt or trunc"):
        data.load("mnist", tmp_path)


def test_label_count_mismatch_and_out_of_range(tmp_path):
    write_mnist_dir(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2], np.uint8), gz=False)
    with pytest.raises(data.DatasetFormatError, match="t10k-labels-idx1-ubyte"):
        data.load("mnist", tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 10], np.uint8), gz=False)
    with pytest.raises(data.DatasetFormatError, match=r"labels outside \[0, 10\)"):
        data.load("mnist", tmp_path)


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    write_mnist_dir(tmp_path / "partial", gz=True)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        data.load("fashion-mnist", tmp_path / "partial")
    msg = str(err.value)
    assert "'fashion-mnist'" in msg and str(tmp_path / "partial") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "t10k-labels-idx1-ubyte" in msg
    # With no data_dir, the env root and the Debian default are both listed.
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    info = data.info("fashion-mnist")
    dirs = [str(d) for d in data.search_dirs(info)]
    assert dirs[0] == str(tmp_path / "nowhere" / "fashion-mnist")
    assert dirs[-1] == "/usr/share/datasets/fashion-mnist"


def test_env_root_is_searched_before_the_default(tmp_path, monkeypatch):
    write_mnist_dir(tmp_path / "fashion-mnist", gz=True, seed=5)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    splits = data.load("fashion-mnist")
    assert len(splits.train) == 7 and splits.source == str(tmp_path / "fashion-mnist")


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_debian_fashion_mnist(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    splits = data.load("fashion-mnist")
    assert (len(splits.train), len(splits.test)) == (60000, 10000)
    assert torch.bincount(splits.test.y).tolist() == [1000] * 10
    assert splits.train.x.min().item() == 0.0 and splits.train.x.max().item() == 1.0
    # The published train-set statistics of Fashion-MNIST.
    assert splits.mean[0] == pytest.approx(0.2860, abs=1e-4)
    assert splits.std[0] == pytest.approx(0.3530, abs=1e-4)
