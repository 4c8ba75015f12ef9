"""The defense registry and :func:`defend`, which trains a classifier under a defense.

A defense is a small config dataclass (its hyperparameters, each a ``advforge defend`` flag)
registered by name in :data:`DEFENSES`; ``settings.objective(splits, train)`` builds the
:class:`advforge.training.Objective` that does one training step. Everything else (epochs,
sharding under ``torchrun``, resumable state, the classifier run directory) is the shared
classifier loop :func:`advforge.training.fit`, so a defended model is an ordinary classifier
run directory that every other command loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from advforge.errors import InputError
from advforge.registry import Registry
from advforge.training import Objective, TrainConfig, fit
from advforge.utils.validate import check_eps

DEFENSES: Registry[Any] = Registry("defense")


@dataclasses.dataclass(kw_only=True)
class DefenseSettings:
    """What every defense has: its name and the L-inf budget it trains against.

    Attributes:
        eps: L-inf budget on the [0, 1] scale; None takes the dataset's default (0.3 for
            MNIST-like data, 8/255 for CIFAR-like data).
    """

    name: ClassVar[str] = ""
    eps: float | None = dataclasses.field(default=None, metadata={
        "help": "L-inf budget the defense trains against (default: the dataset's, 0.3 for "
                "MNIST-like data)"})

    def __post_init__(self) -> None:
        if self.eps is not None:
            check_eps(self.eps, "eps", upper=1.0)

    def resolved(self, splits: Any) -> DefenseSettings:
        """A copy with ``eps`` filled in from the dataset when it was left unset."""
        if self.eps is not None:
            return self
        return dataclasses.replace(self, eps=float(splits.default_eps))

    def prepare(self, train: TrainConfig, splits: Any, *, device: Any = "cpu",
                progress: bool = False) -> DefenseSettings:
        """Do what must happen before training (e.g. train static source models) and return
        the settings to train with; nothing by default."""
        return self

    def objective(self, splits: Any, train: TrainConfig) -> Objective:
        """The training step this defense runs (``self`` must be :meth:`resolved`)."""
        raise NotImplementedError

    def run(self, train: TrainConfig, splits: Any, *, device: Any = "cpu",
            progress: bool = False,
            log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train under this defense (``self`` resolved and prepared): by default the shared
        classifier loop with :meth:`objective`; a defense that does more (``fi-at``
        fine-tunes an existing classifier and writes a report) overrides this."""
        return fit(train, splits, device=device, progress=progress, log=log,
                   objective=self.objective(splits, train))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}


def names() -> list[str]:
    """Every registered defense."""
    return DEFENSES.names()


def settings_class(name: str) -> type[DefenseSettings]:
    """The settings dataclass of defense ``name`` (one-line error for an unknown name)."""
    return DEFENSES.get(name)


def defend(
    settings: DefenseSettings,
    train: TrainConfig,
    splits: Any,
    *,
    device: Any = "cpu",
    progress: bool = False,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``train.arch`` on ``splits`` under the defense ``settings``; write ``train.out``.

    Args:
        settings: a registered defense's settings (``eps`` None: the dataset's default).
        train: the classifier's training run (architecture, epochs, optimiser, out, resume).
        splits: an ``advforge.data.DatasetSplits``.
        device: where to train (under torchrun a CUDA device becomes ``cuda:LOCAL_RANK``).
        progress: show a progress bar per epoch.
        log: called after each epoch with its metrics.

    Returns:
        ``training.fit``'s metrics; the run directory's ``config.json`` records the defense
        under ``extra.defense``.
    """
    if not isinstance(settings, DefenseSettings):
        raise InputError(f"settings must be a defense's settings, got {type(settings).__name__}")
    settings = settings.resolved(splits).prepare(train, splits, device=device,
                                                 progress=progress)
    return settings.run(train, splits, device=device, progress=progress, log=log)
