"""The classifier registry: ``create(name, ...)`` builds a bare net and wraps it in
:class:`~advforge.models.wrapper.ImageClassifier` (normalisation inside ``forward``).

Every architecture is a factory ``f(num_classes, in_channels, input_size, **arch_kwargs) ->
nn.Module`` registered in :data:`MODELS`. Factories compute their flatten sizes from
``input_size`` so one name serves 28x28 grey and 32x32 colour data alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from torch import nn

from advforge.errors import InputError
from advforge.models.wrapper import ImageClassifier
from advforge.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")


def create(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int = 28,
    mean: Sequence[float] | float = 0.0,
    std: Sequence[float] | float = 1.0,
    **arch_kwargs,
) -> ImageClassifier:
    """Build the registered classifier ``name`` wrapped with its input normalisation.

    Args:
        name: registry key, e.g. ``"model_b"`` or ``"resnet32"`` (see :func:`names`).
        num_classes: number of logits.
        in_channels: 1 (grey) or 3 (colour); any positive count works.
        input_size: side of the square input images (28 or 32 for the paper models).
        mean: per-channel mean of the training data (or one value for all channels).
        std: per-channel standard deviation, same convention.
        **arch_kwargs: architecture options (e.g. ``widen_factor`` for ``wrn34``).

    Returns:
        An :class:`ImageClassifier` in training mode, carrying ``num_classes``,
        ``in_channels`` and ``input_size``.

    Raises:
        UnknownNameError: ``name`` is not registered.
        InputError: a size is not a positive integer, or an ``arch_kwargs`` key is unknown or
            invalid for this architecture.
    """
    factory = MODELS.get(name)
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_positive_int("input_size", input_size)
    if num_classes < 2:
        raise InputError(f"num_classes must be >= 2, got {num_classes}")
    try:  # bind first so a typo in arch_kwargs is a one-line error, not a deep TypeError
        inspect.signature(factory).bind(num_classes, in_channels, input_size, **arch_kwargs)
    except TypeError as exc:
        raise InputError(f"bad arch_kwargs for model {name!r}: {exc}") from None
    net = factory(num_classes, in_channels, input_size, **arch_kwargs)
    try:
        model = ImageClassifier(net, mean, std, num_classes=num_classes, in_channels=in_channels)
    except ValueError as exc:
        raise InputError(f"bad normalisation for model {name!r}: {exc}") from None
    model.input_size = input_size  # save_model records it in config.json
    return model


def names() -> list[str]:
    """All registered classifier names, sorted."""
    return MODELS.names()


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a convolution or pooling layer (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_out(size: int, kernel: int = 2, *, ceil: bool = False) -> int:
    """Spatial size after ``MaxPool2d(kernel)`` with stride = kernel."""
    return -(-size // kernel) if ceil else size // kernel


def check_feature_size(name: str, size: int, input_size: int) -> None:
    """Refuse inputs so small that the feature map vanishes before the classifier."""
    if size < 1:
        raise InputError(f"input_size {input_size} is too small for model {name!r}")


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise InputError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_positive_int(name: str, value: object) -> None:
    """Raise InputError unless ``value`` is an int >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def check_fraction(name: str, value: float) -> None:
    """Dropout probabilities and the like must lie in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise InputError(f"{name} must lie in [0, 1), got {value!r}")
