"""Classifier zoo, checkpoints, users' own networks and training recipes.

``create(name, num_classes=..., in_channels=..., input_size=..., mean=..., std=...)`` builds any
registered classifier wrapped in :class:`ImageClassifier`; ``save_model`` / ``load_model``
round-trip it through ``model.safetensors`` + ``config.json`` without pickle.
``import_model(factory, weights, dataset=..., out=...)`` makes a run directory of a user's own
network (``"package.module:callable"`` + safetensors weights) that ``load_model`` also reads;
:mod:`advforge.models.recipes` holds the settings each command uses by default.
"""

from __future__ import annotations

# Importing the architecture modules registers them in MODELS.
from advforge.models import alexnet, mnist_nets, resnet, vgg, wrn  # noqa: F401
from advforge.models.importer import import_model
from advforge.models.io import load_model, read_model_config, save_model, unwrap_model
from advforge.models.wrapper import ImageClassifier
from advforge.models.zoo import MODELS, create, names

__all__ = [
    "MODELS",
    "ImageClassifier",
    "create",
    "import_model",
    "load_model",
    "names",
    "read_model_config",
    "save_model",
    "unwrap_model",
]
