"""Classifier training: ``TrainConfig``, ``train_step``, ``evaluate`` and ``fit``."""

from advforge.training.config import TrainConfig
from advforge.training.loop import count_correct, evaluate, fit, train_step
from advforge.training.state import STATE_FILE, load_train_state, save_train_state

__all__ = [
    "STATE_FILE",
    "TrainConfig",
    "count_correct",
    "evaluate",
    "fit",
    "load_train_state",
    "save_train_state",
    "train_step",
]
