"""Defenses: train a classifier that resists adversarial examples.

``defend(settings, train_config, splits)`` trains under one registered defense and writes an
ordinary classifier run directory. Registered: ``fgsm-at`` (Goodfellow et al. 2015),
``pgd-at`` (Madry et al. 2018), ``ensemble-at`` (Tramer et al. 2018), ``adv-net`` (the
adversarial networks of Wang & Yu) and ``fi-at`` (influence-guided fine-tuning of a trained
classifier, Shi, Shu, Zhu & Chen 2020).
"""

from advforge.defenses import (  # noqa: F401  (registers the defenses)
    adversarial,
    advnet,
    ensemble,
    influence,
)
from advforge.defenses.base import DEFENSES, DefenseSettings, defend, names, settings_class

__all__ = ["DEFENSES", "DefenseSettings", "defend", "names", "settings_class"]
