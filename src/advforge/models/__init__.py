"""Classifier zoo and checkpoints.

``create(name, num_classes=..., in_channels=..., input_size=..., mean=..., std=...)`` builds any
registered classifier wrapped in :class:`ImageClassifier`; ``save_model`` / ``load_model``
round-trip it through ``model.safetensors`` + ``config.json`` without pickle.
"""

from __future__ import annotations

# Importing the architecture modules registers them in MODELS.
from advforge.models import alexnet, mnist_nets, resnet, vgg, wrn  # noqa: F401
from advforge.models.io import load_model, read_model_config, save_model, unwrap_model
from advforge.models.wrapper import ImageClassifier
from advforge.models.zoo import MODELS, create, names

__all__ = [
    "MODELS",
    "ImageClassifier",
    "create",
    "load_model",
    "names",
    "read_model_config",
    "save_model",
    "unwrap_model",
]
