"""Reduced-precision inference: which precisions exist, whether a device runs bfloat16
natively, and the autocast region a forward pass runs in.

bfloat16 keeps float32's exponent range with an 8-bit mantissa (relative error <= 2^-8 per
rounding). On a CPU with AVX-512 BF16 (or AMX) oneDNN runs bfloat16 convolutions at about
twice the float32 rate; on a GPU with bfloat16 tensor cores likewise. Elsewhere it is
emulated and slower, so :func:`lower_precision` falls back to float32 where the device
cannot run it natively.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("float32", "bfloat16")


def bfloat16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 convolutions and matmuls natively."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def effective_precision(precision: str, device: torch.device) -> str:
    """``precision`` where ``device`` runs it natively, else "float32"."""
    if precision == "bfloat16" and bfloat16_supported(device):
        return "bfloat16"
    return "float32"


@contextlib.contextmanager
def lower_precision(precision: str, device: torch.device) -> Iterator[str]:
    """Autocast region for ``precision`` on ``device`` (a no-op for float32 or where
    bfloat16 is not native); yields the precision that runs."""
    used = effective_precision(precision, device)
    if used == "float32":
        yield used
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield used
