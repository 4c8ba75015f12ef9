"""IDX files (LeCun's MNIST format) and the two datasets stored in it: ``mnist`` and
``fashion-mnist``.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code (0x08 = uint8), the
number of dimensions d, then d big-endian uint32 sizes, then the values row-major, big-endian.
Files may be gzip-compressed (detected from the content, not the name) or plain, and named
either ``train-images-idx3-ubyte`` (Zalando, Debian) or ``train-images.idx3-ubyte`` (some
MNIST mirrors).

Sources: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist/``); MNIST from any directory holding the four files.
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from advforge.data.catalog import DatasetFormatError, DatasetInfo, find_dir, register_dataset
from advforge.data.splits import DatasetSplits, ImageSet, labels_to_tensor, uint8_to_images

logger = logging.getLogger(__name__)

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or plain) into a native-endian NumPy array of its stored shape.

    Raises:
        DatasetFormatError: bad magic, unknown type code, or a size that disagrees with the
            header (a truncated or padded file); the message names the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetFormatError(f"{path}: corrupt or truncated gzip data ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetFormatError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetFormatError(
            f"{path}: truncated or corrupt IDX file: header says shape {shape} "
            f"({expected} bytes of data) but the file holds {len(raw) - header}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _find_file(directory: Path, stem: str) -> Path | None:
    """The first of ``stem``, ``stem.gz`` and the dotted MNIST-mirror spelling that exists."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def has_idx_files(directory: Path) -> bool:
    """Whether ``directory`` holds all four IDX files of an MNIST-layout dataset."""
    return all(_find_file(directory, stem) is not None for stem in _STEMS.values())


def _read_split(directory: Path, split: str, num_classes: int) -> ImageSet:
    images_path = _find_file(directory, _STEMS[f"{split}_images"])
    labels_path = _find_file(directory, _STEMS[f"{split}_labels"])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DatasetFormatError(
            f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(
            f"{labels_path}: labels of shape {labels.shape} do not match the "
            f"{images.shape[0]} images in {images_path.name}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(f"{labels_path}: labels outside [0, {num_classes})")
    # (N, H, W) -> (N, 1, H, W)
    return ImageSet(uint8_to_images(images[:, None]), labels_to_tensor(labels))


def load_idx_dataset(
    name: str, directory: Path, class_names: list[str], default_eps: float = 0.3
) -> DatasetSplits:
    """Read the four IDX files in ``directory`` as a 1-channel dataset named ``name``."""
    train = _read_split(directory, "train", len(class_names))
    test = _read_split(directory, "test", len(class_names))
    logger.info("%s: %d train / %d test images from %s", name, len(train), len(test), directory)
    return DatasetSplits.from_sets(
        name, train, test, class_names, default_eps=default_eps, source=str(directory)
    )


_IDX_NEEDS = ", ".join(f"{s}[.gz]" for s in _STEMS.values())


FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    description="Fashion-MNIST (Zalando): 60k / 10k 28x28 grey clothing images, 10 classes",
    obtain="install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or get "
    "the four IDX files from github.com/zalandoresearch/fashion-mnist",
    needs=_IDX_NEEDS,
    is_complete=has_idx_files,
    defaults=lambda: [Path("/usr/share/datasets/fashion-mnist")],
)
MNIST = DatasetInfo(
    name="mnist",
    description="MNIST: 60k / 10k 28x28 grey handwritten digits, 10 classes (IDX files)",
    obtain="copy the four MNIST IDX files (yann.lecun.com/exdb/mnist) into a directory",
    needs=_IDX_NEEDS,
    is_complete=has_idx_files,
)


@register_dataset(FASHION_MNIST)
def load_fashion_mnist(data_dir: str | Path | None = None) -> DatasetSplits:
    """Fashion-MNIST from its IDX files (eps 0.3 as for MNIST, the AI-GAN setting)."""
    directory = find_dir(FASHION_MNIST, data_dir)
    return load_idx_dataset("fashion-mnist", directory, FASHION_CLASSES)


@register_dataset(MNIST)
def load_mnist(data_dir: str | Path | None = None) -> DatasetSplits:
    """The full MNIST from a directory holding its four IDX files."""
    directory = find_dir(MNIST, data_dir)
    return load_idx_dataset("mnist", directory, [str(d) for d in range(10)])
