"""In-memory containers shared by every loader: :class:`ImageSet` and :class:`DatasetSplits`.

Every loader returns images as float32 ``(N, C, H, W)`` tensors in [0, 1] (uint8 / 255, exactly
what torchvision's ``ToTensor`` gives) and labels as int64 ``(N,)``. Normalisation is *not*
applied here: ``mean`` / ``std`` travel with the splits so the model's ``ImageClassifier`` does it
inside ``forward`` (docs/contract.md).

``mean`` and ``std`` are always computed from the train split that was actually loaded (one rule
for every dataset, including a user's image folder or a subset), never copied from a table.
On the full standard datasets they agree with the commonly quoted values (e.g. MNIST 0.1307 /
0.3081 from the 60k train set).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from advforge.errors import InputError

# A channel whose std is ~0 (a constant image plane) would make normalisation divide by zero;
# ImageClassifier rejects std <= 0, so such a channel is left unscaled (std 1).
_MIN_STD = 1e-6


@dataclass(eq=False)  # tensors have no single truth value; compare .x / .y explicitly
class ImageSet:
    """A labelled set of images held in memory.

    Attributes:
        x: float32 images ``(N, C, H, W)`` with values in [0, 1].
        y: int64 class indices ``(N,)``.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise InputError("ImageSet needs torch tensors x and y")
        if self.x.dim() != 4 or self.x.dtype != torch.float32:
            raise InputError(
                f"ImageSet.x must be float32 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.y.dim() != 1 or self.y.dtype != torch.int64:
            raise InputError(
                f"ImageSet.y must be int64 (N,), got {self.y.dtype} {tuple(self.y.shape)}"
            )
        if self.x.shape[0] != self.y.shape[0]:
            raise InputError(f"ImageSet has {self.x.shape[0]} images but {self.y.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"ImageSet(n={len(self)}, image={tuple(self.x.shape[1:])}, device={self.x.device})"

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray | range) -> ImageSet:
        """Return a new ImageSet holding the rows ``indices`` (in that order; copies the data).

        ``indices`` may be integer positions or a boolean mask of length N.
        """
        idx = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(np.asarray(indices))
        n = len(self)
        if idx.dtype == torch.bool:
            if idx.shape != (n,):
                raise InputError(f"a boolean mask needs shape ({n},), got {tuple(idx.shape)}")
            idx = idx.nonzero().flatten()
        elif idx.numel() and (idx.is_floating_point() or idx.is_complex()):
            raise InputError(f"subset indices must be integers, got {idx.dtype}")
        idx = idx.to(dtype=torch.long).flatten()
        if idx.numel() and (idx.min().item() < -n or idx.max().item() >= n):
            raise InputError(f"subset indices out of range for a set of {n} images")
        idx = idx.to(self.y.device)
        return ImageSet(self.x[idx], self.y[idx])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` mini-batches, ``x`` (B, C, H, W) and ``y`` (B,).

        Args:
            batch_size: images per batch (the last one may be smaller unless ``drop_last``).
            shuffle: visit the images in a random order drawn from ``generator``.
            generator: a CPU ``torch.Generator`` for a reproducible order; the global RNG if None.
            drop_last: skip a final batch smaller than ``batch_size``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        n = len(self)
        order = torch.randperm(n, generator=generator).to(self.y.device) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            if order is None:  # contiguous views, no copy
                yield self.x[start : start + batch_size], self.y[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                yield self.x[idx], self.y[idx]

    def to(self, device: torch.device | str) -> ImageSet:
        """Return the set on ``device`` (the caller picks it; the library never does)."""
        return ImageSet(self.x.to(device), self.y.to(device))


@dataclass(eq=False)
class DatasetSplits:
    """A named dataset: a train and a test :class:`ImageSet` plus what a model needs to know.

    Attributes:
        name: registry name (``"mnist5k"``, ``"cifar10"``, ...).
        train: the training split.
        test: the test split.
        num_classes: number of classes K; labels lie in [0, K).
        class_names: K human-readable names, index = label.
        default_eps: the papers' L-inf budget for this data: 0.3 for MNIST-like, 8/255 otherwise.
        in_channels: C.
        image_size: (H, W).
        mean: per-channel mean of the train split (length C), for ``ImageClassifier``.
        std: per-channel std of the train split (length C), for ``ImageClassifier``.
        source: where the files were read from ("" for generated data).
    """

    name: str
    train: ImageSet
    test: ImageSet
    num_classes: int
    class_names: list[str]
    default_eps: float
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = field(default="")

    def __post_init__(self) -> None:
        shape = (self.in_channels, *self.image_size)
        for split in ("train", "test"):
            got = tuple(getattr(self, split).x.shape[1:])
            if got != shape:
                raise InputError(f"{self.name} {split} images have shape {got}, expected {shape}")
            y = getattr(self, split).y
            if len(y) and (y.min().item() < 0 or y.max().item() >= self.num_classes):
                raise InputError(f"{self.name} {split} labels fall outside [0, {self.num_classes})")
        if len(self.class_names) != self.num_classes:
            raise InputError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise InputError(f"{self.name}: mean/std need {self.in_channels} values")

    @classmethod
    def from_sets(
        cls,
        name: str,
        train: ImageSet,
        test: ImageSet,
        class_names: Sequence[str],
        *,
        default_eps: float,
        source: str = "",
    ) -> DatasetSplits:
        """Build the splits, reading C, (H, W) from the images and mean/std from ``train``."""
        mean, std = channel_stats(train.x)
        return cls(
            name=name,
            train=train,
            test=test,
            num_classes=len(class_names),
            class_names=list(class_names),
            default_eps=float(default_eps),
            in_channels=int(train.x.shape[1]),
            image_size=(int(train.x.shape[2]), int(train.x.shape[3])),
            mean=mean,
            std=std,
            source=source,
        )

    def to_dict(self) -> dict:
        """Everything but the tensors, JSON-ready (for ``config.json`` and reports)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "default_eps": self.default_eps,
            "in_channels": self.in_channels,
            "image_size": list(self.image_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "n_train": len(self.train),
            "n_test": len(self.test),
            "source": self.source,
        }


def channel_stats(
    x: torch.Tensor, chunk: int = 2048
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of ``x`` (N, C, H, W), accumulated in float64.

    Chunked so a 50k-image CIFAR train split never needs a second full-size float64 copy.
    """
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64, device=x.device)
    total_sq = torch.zeros(c, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk].double()  # (b, C, H, W)
        total += xb.sum(dim=(0, 2, 3))
        total_sq += xb.square().sum(dim=(0, 2, 3))
    count = max(x.shape[0] * x.shape[2] * x.shape[3], 1)
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std < _MIN_STD, torch.ones_like(std), std)
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def uint8_to_images(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 tensor in [0, 1] (value / 255, bit-exact with ToTensor)."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise InputError(f"expected uint8 (N, C, H, W) pixels, got {images.dtype} {images.shape}")
    # astype copies into a writable float32 array, so torch shares it without a read-only warning.
    return torch.from_numpy(images.astype(np.float32)).div_(255.0)


def labels_to_tensor(labels: np.ndarray) -> torch.Tensor:
    """Any integer label array -> int64 tensor (N,)."""
    return torch.from_numpy(np.asarray(labels).astype(np.int64).reshape(-1))


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: round(n_k * test_fraction) test images from each class k.

    Returns (train_idx, test_idx), each shuffled across classes so that any prefix of a split
    mixes classes (evaluating "the first 100 test images" then covers every class).
    NumPy's PCG64 stream is stable across platforms and versions, so a seed fixes the split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_test = int(np.floor(len(idx) * test_fraction + 0.5))  # round half up, not to even
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train_parts))
    test_idx = rng.permutation(np.concatenate(test_parts))
    return train_idx, test_idx
