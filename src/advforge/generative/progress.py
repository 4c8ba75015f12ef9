"""Per-step progress of the learned attackers' training: a callback, a tqdm bar, or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advforge.generative.parallel import is_main

Progress = Callable[[dict[str, Any]], None] | bool | None


class ProgressReporter:
    """Turns the ``progress`` argument into per-step callbacks: a callable gets a dict per
    step; ``True`` shows a tqdm bar on stderr when it is a terminal; False/None is silent."""

    def __init__(self, progress: Progress, total: int, desc: str) -> None:
        main = is_main()  # under torchrun only rank 0 reports
        self.callback = progress if callable(progress) and main else None
        self.bar = None
        if progress is True and main:
            import sys

            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)

    def update(self, info: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback(info)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in info.items()
                                  if isinstance(v, float)}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
