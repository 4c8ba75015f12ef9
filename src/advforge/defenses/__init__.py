"""Defenses: train a classifier that resists adversarial examples.

``defend(settings, train_config, splits)`` trains under one registered defense and writes an
ordinary classifier run directory. Registered: ``fgsm-at`` (Goodfellow et al. 2015),
``pgd-at`` (Madry et al. 2018), ``ensemble-at`` (Tramer et al. 2018) and ``adv-net`` (the
adversarial networks of Wang & Yu).
"""

from advforge.defenses import adversarial, advnet, ensemble  # noqa: F401  (registers the defenses)
from advforge.defenses.base import DEFENSES, DefenseSettings, defend, names, settings_class

__all__ = ["DEFENSES", "DefenseSettings", "defend", "names", "settings_class"]
