"""What an attack costs, measured two ways for Table VI.

* :func:`interleaved_seconds`: wall time of several calls taken in turns (A, B, A, B, ...),
  so a burst of other work on the machine slows each of them alike instead of whichever was
  being timed at that moment: other work on a two-core machine can halve the speed of a
  PGD-20 run lasting seconds while a generator's calls of milliseconds slip between its
  bursts, so timing one after the other can double their ratio.
* :func:`flops_per_example`: floating-point operations of one call (matrix products and
  convolutions, forward and backward, by ``torch.utils.flop_counter``'s formulas), the same
  on every machine and every run. It tells the work apart from the speed the hardware gives
  that work: a bfloat16 generator does its FLOPs faster than a float32 PGD does its own.
* :func:`other_load`: how many cores other processes kept busy while the timing ran, so a
  reader knows whether a ratio is a quiet machine's.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


def _seconds(fn: Callable[[], Any]) -> float:
    """Wall seconds of ``fn()``; on a GPU the call is waited for, not just launched."""
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_seconds(calls: dict[str, Callable[[], Any]], rounds: int
                        ) -> dict[str, dict[str, float]]:
    """Median, min and max seconds of every call over ``rounds`` rounds, each round calling
    each once in turn, after one warm-up call each (allocators, kernels, caches)."""
    for fn in calls.values():
        fn()
    seen: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            seen[name].append(_seconds(fn))
    return {name: {"median": statistics.median(v), "min": min(v), "max": max(v)}
            for name, v in seen.items()}


def timed_call(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    return interleaved_seconds({"call": fn}, repeats)["call"]["median"]


def first_call_seconds(fn: Callable[[], Any]) -> float:
    """Seconds of one call, warm-up included (a compilation, say)."""
    return _seconds(fn)


def _machine_busy_seconds() -> float | None:
    """CPU seconds every core has spent busy since boot (Linux ``/proc/stat``), or None."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def other_load() -> Iterator[dict[str, float | None]]:
    """Yields a dict whose ``cores`` becomes, on exit, the mean number of cores processes
    other than this one kept busy meanwhile (None where ``/proc/stat`` is not there)."""
    seen: dict[str, float | None] = {"cores": None}
    busy, own, start = _machine_busy_seconds(), time.process_time(), time.perf_counter()
    yield seen
    after = _machine_busy_seconds()
    if busy is not None and after is not None:
        wall = time.perf_counter() - start
        others = (after - busy) - (time.process_time() - own)
        seen["cores"] = max(0.0, others) / wall if wall > 0 else 0.0


class _FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of every operator ``torch.utils.flop_counter`` has a formula for.
    (``FlopCounterMode`` itself tracks modules with hooks that ``torch.autograd.grad`` on a
    leaf input, as PGD calls it, does not support.)"""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def flops_per_example(fn: Callable[[], Any], n: int) -> float:
    """FLOPs of ``fn()`` (which attacks ``n`` examples) per example."""
    counter = _FlopCount()
    with counter:
        fn()
    return counter.total / n
