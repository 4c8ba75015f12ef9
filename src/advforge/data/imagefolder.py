"""``imagefolder``: class-per-folder images (ImageNet-50 style) read with Pillow.

Layouts (``root`` = ``data_dir`` or ``$ADVFORGE_DATA_DIR/imagefolder``):

* pre-split: ``root/train/<class>/*.png`` and ``root/test/<class>/`` (or ``root/val/<class>/``);
  class names (sorted folder names of ``train``) fix the label order;
* single: ``root/<class>/*.png``, split by a seeded stratified ``test_fraction`` per class.

Images may sit in sub-folders of a class folder; hidden files and folders are skipped. Every
image is converted to one mode (RGB or 8-bit grey) and, if ``size`` is given, resized with
bilinear filtering; without ``size`` all images must share one size. The whole set is held in
memory as float32, so resize large images (224x224x3 costs 0.6 MB per image).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from advforge.data.catalog import DatasetFormatError, DatasetInfo, find_dir, register_dataset
from advforge.data.splits import (
    DatasetSplits,
    ImageSet,
    labels_to_tensor,
    stratified_split,
    uint8_to_images,
)
from advforge.errors import DatasetNotFoundError, InputError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_MODES = {"rgb": "RGB", "grayscale": "L", "greyscale": "L", "gray": "L", "grey": "L"}


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _layout(root: Path) -> tuple[Path, Path | None]:
    """(train root, test root or None when the folder must be split)."""
    test = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test is not None:
        return root / "train", test
    return root, None


def has_image_folders(directory: Path) -> bool:
    """Whether ``directory`` has at least one class folder holding an image."""
    train_root, _ = _layout(directory)
    return any(
        any(p.suffix.lower() in IMAGE_EXTENSIONS for p in c.rglob("*"))
        for c in _class_dirs(train_root)
    )


def _scan(root: Path, class_names: list[str]) -> tuple[list[Path], np.ndarray]:
    """Image paths below ``root/<class>/`` and their labels (index into ``class_names``)."""
    index = {name: k for k, name in enumerate(class_names)}
    paths, labels = [], []
    for folder in _class_dirs(root):
        if folder.name not in index:
            raise DatasetFormatError(f"{folder}: class {folder.name!r} is not a train class")
        found = _images_in(folder)
        paths += found
        labels += [index[folder.name]] * len(found)
    return paths, np.asarray(labels, dtype=np.int64)


def _pick_mode(paths: list[Path], mode: str) -> str:
    """Pillow mode for ``mode``; "auto" gives grey only if every image is single-band."""
    if mode != "auto":
        return _MODES[mode]
    for p in paths:
        with Image.open(p) as im:  # reads the header only
            if im.mode not in _GREY_MODES:
                return "RGB"
    return "L"


def _read_one(path: Path, pil_mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image -> uint8 (H, W, C)."""
    try:
        with Image.open(path) as im:
            im = im.convert(pil_mode)
            if size is not None:
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # PIL takes (W, H)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBomb
        raise DatasetFormatError(f"{path}: cannot read image ({err})") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_images(paths: list[Path], pil_mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """Read ``paths`` into one uint8 array (N, C, H, W); all must share a size unless resized."""
    out: np.ndarray | None = None
    for i, path in enumerate(paths):
        arr = _read_one(path, pil_mode, size)  # (H, W, C)
        if out is None:
            out = np.empty((len(paths), *arr.shape), dtype=np.uint8)
        elif arr.shape != out.shape[1:]:
            h, w = out.shape[1:3]
            raise DatasetFormatError(
                f"{path}: image is {arr.shape[1]}x{arr.shape[0]} but {paths[0].name} is {w}x{h}; "
                "pass size=(H, W) to resize every image"
            )
        out[i] = arr
    return out.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)


def _check_options(size: int | tuple[int, int] | None, mode: str) -> tuple[int, int] | None:
    if mode != "auto" and mode not in _MODES:
        raise InputError(f"imagefolder mode must be 'auto', 'rgb' or 'grayscale', got {mode!r}")
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, int) and v > 0 for v in hw):
        raise InputError(f"imagefolder size must be a positive int or (H, W), got {size!r}")
    return hw


IMAGEFOLDER = DatasetInfo(
    name="imagefolder",
    description="your own images, one folder per class (root/train/<class>/, root/test/<class>/)",
    obtain="put one folder of images per class under a directory",
    needs="<class>/ folders of images",
    is_complete=has_image_folders,
)


@register_dataset(IMAGEFOLDER)
def load_imagefolder(
    data_dir: str | Path | None = None,
    size: int | tuple[int, int] | None = None,
    mode: str = "auto",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Class-per-folder images.

    Args:
        data_dir: the root (see the module docstring for the two layouts).
        size: resize every image to ``size`` x ``size`` or (H, W); None keeps the stored size.
        mode: "rgb", "grayscale", or "auto" (grey when every image is single-band).
        test_fraction: share of each class held out when the root is not pre-split.
        seed: seed of that split.
    """
    hw = _check_options(size, mode)
    root = find_dir(IMAGEFOLDER, data_dir)
    class_names, (paths, labels), (test_paths, test_labels) = _collect(root, test_fraction, seed)
    pil_mode = _pick_mode(paths + test_paths, mode)
    x_train = read_images(paths, pil_mode, hw)
    x_test = read_images(test_paths, pil_mode, hw)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetFormatError(
            f"{test_paths[0]}: test images are {x_test.shape[1:]} but train images "
            f"{x_train.shape[1:]}; pass size=(H, W)"
        )
    train = ImageSet(uint8_to_images(x_train), labels_to_tensor(labels))
    test = ImageSet(uint8_to_images(x_test), labels_to_tensor(test_labels))
    logger.info(
        "imagefolder: %d train / %d test images, %d classes, %s, from %s",
        len(train), len(test), len(class_names), tuple(train.x.shape[1:]), root,
    )  # fmt: skip
    return DatasetSplits.from_sets(
        "imagefolder", train, test, class_names, default_eps=8 / 255, source=str(root)
    )


_Part = tuple[list[Path], np.ndarray]


def _collect(root: Path, test_fraction: float, seed: int) -> tuple[list[str], _Part, _Part]:
    """Class names, then (paths, labels) of the train and the test split."""
    train_root, test_root = _layout(root)
    class_names = [c.name for c in _class_dirs(train_root)]
    paths, labels = _scan(train_root, class_names)
    if test_root is not None:
        test_paths, test_labels = _scan(test_root, class_names)
        if not test_paths:
            raise DatasetNotFoundError(f"dataset 'imagefolder': no images under {test_root}")
        return class_names, (paths, labels), (test_paths, test_labels)
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    if len(test_idx) == 0 or len(train_idx) == 0:
        raise InputError(
            f"imagefolder {root}: {len(paths)} images are too few to split with "
            f"test_fraction={test_fraction}; add images or use root/train and root/test"
        )
    return (
        class_names,
        ([paths[i] for i in train_idx], labels[train_idx]),
        ([paths[i] for i in test_idx], labels[test_idx]),
    )
