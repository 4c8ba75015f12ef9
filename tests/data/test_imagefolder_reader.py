"""Class-per-folder PNGs written with Pillow read back exactly, in both layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from advforge import data
from advforge.errors import DatasetNotFoundError, InputError


def write_png(path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_presplit(root, *, rgb: bool = True, size=(6, 5)) -> dict:
    """root/{train,test}/{cat,dog}/*.png; returns {relative path: pixels (H, W[, 3])}."""
    rng = np.random.default_rng(0)
    shape = (*size, 3) if rgb else size
    written = {}
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                rel = f"{split}/{cls}/{i}.png"
                write_png(root / rel, arr)
                written[rel] = arr
    return written


def test_presplit_rgb_round_trip_is_exact(tmp_path):
    written = write_presplit(tmp_path)
    (tmp_path / "train" / "cat" / ".hidden.png").write_bytes(b"not an image")  # skipped
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")  # skipped
    splits = data.load("imagefolder", tmp_path)
    assert splits.class_names == ["cat", "dog"] and splits.num_classes == 2
    assert splits.train.x.shape == (6, 3, 6, 5) and splits.train.y.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.stack([written[f"train/{c}/{i}.png"] for c in ("cat", "dog") for i in range(3)])
    assert torch.equal(
        splits.train.x, torch.from_numpy(expected.transpose(0, 3, 1, 2).astype(np.float32)) / 255
    )
    assert splits.test.y.tolist() == [0, 0, 1, 1]
    assert splits.default_eps == pytest.approx(8 / 255) and splits.source == str(tmp_path)


def test_grayscale_auto_and_forced_modes(tmp_path):
    written = write_presplit(tmp_path, rgb=False)
    auto = data.load("imagefolder", tmp_path)
    assert auto.in_channels == 1
    assert torch.equal(auto.test.x[3, 0] * 255, torch.from_numpy(written["test/dog/1.png"]).float())
    rgb = data.load("imagefolder", tmp_path, mode="rgb")
    assert rgb.in_channels == 3 and torch.equal(rgb.test.x[:, 0], rgb.test.x[:, 2])
    with pytest.raises(InputError, match="mode"):
        data.load("imagefolder", tmp_path, mode="cmyk")


def test_rgb_folder_forced_to_grayscale_uses_pillow_luma(tmp_path):
    written = write_presplit(tmp_path)
    splits = data.load("imagefolder", tmp_path, mode="grayscale")
    luma = np.array(Image.fromarray(written["train/cat/0.png"]).convert("L"))
    assert splits.in_channels == 1
    assert torch.equal(splits.train.x[0, 0] * 255, torch.from_numpy(luma).float())


def test_resize_and_mixed_sizes(tmp_path):
    write_presplit(tmp_path)
    write_png(tmp_path / "train" / "dog" / "big.png", np.full((9, 11, 3), 77, np.uint8))
    with pytest.raises(data.DatasetFormatError, match=r"big.png: image is 11x9.*size=") as err:
        data.load("imagefolder", tmp_path)
    assert "\n" not in str(err.value)
    splits = data.load("imagefolder", tmp_path, size=(4, 7))
    assert splits.image_size == (4, 7) and len(splits.train) == 7
    big = splits.train.x[6]  # train/dog/big.png sorts after 0.png .. 2.png
    assert torch.all(big == torch.tensor(77.0) / 255)  # constant stays constant when resized
    with pytest.raises(InputError, match="size"):
        data.load("imagefolder", tmp_path, size=0)


def test_single_root_is_split_stratified_and_seeded(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("a", 10), ("b", 5), ("c", 20)):
        for i in range(n):
            write_png(tmp_path / cls / f"{i:02d}.png", rng.integers(0, 256, (4, 4), np.uint8))
    splits = data.load("imagefolder", tmp_path)
    assert torch.bincount(splits.test.y).tolist() == [2, 1, 4]  # 20% of each class
    assert torch.bincount(splits.train.y).tolist() == [8, 4, 16]
    again = data.load("imagefolder", tmp_path)
    assert torch.equal(splits.test.x, again.test.x) and torch.equal(splits.test.y, again.test.y)
    other = data.load("imagefolder", tmp_path, seed=1)
    assert not torch.equal(splits.test.x, other.test.x)
    # Train and test are disjoint and together hold every image once.
    everything = torch.cat([splits.train.x, splits.test.x])
    rows = {bytes((x * 255).round().byte().numpy()) for x in everything}
    assert len(rows) == 35
    half = data.load("imagefolder", tmp_path, test_fraction=0.5)
    assert torch.bincount(half.test.y).tolist() == [5, 3, 10]


def test_errors_name_the_file_or_folder(tmp_path):
    write_presplit(tmp_path)
    (tmp_path / "test" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(data.DatasetFormatError, match="broken.png: cannot read image"):
        data.load("imagefolder", tmp_path)
    (tmp_path / "test" / "cat" / "broken.png").unlink()
    write_png(tmp_path / "test" / "bird" / "0.png", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(data.DatasetFormatError, match="'bird' is not a train class"):
        data.load("imagefolder", tmp_path)


def test_missing_or_empty_folder(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    for root in (tmp_path / "absent", tmp_path / "empty"):
        with pytest.raises(DatasetNotFoundError, match=f"'imagefolder' not found in {root}"):
            data.load("imagefolder", root)
    write_png(tmp_path / "one" / "cat" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="too few"):
        data.load("imagefolder", tmp_path / "one")
