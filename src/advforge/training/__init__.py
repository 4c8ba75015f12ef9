"""Classifier training: ``TrainConfig``, ``train_step``, ``evaluate``, ``fit`` and the
``Objective`` a training step runs."""

from advforge.training.config import TrainConfig
from advforge.training.loop import count_correct, evaluate, fit
from advforge.training.objective import Objective, StepContext, train_step
from advforge.training.state import STATE_FILE, load_train_state, save_train_state

__all__ = [
    "STATE_FILE",
    "Objective",
    "StepContext",
    "TrainConfig",
    "count_correct",
    "evaluate",
    "fit",
    "load_train_state",
    "save_train_state",
    "train_step",
]
