"""Influence-guided adversarial training, ``fi-at`` (Shi, Shu, Zhu & Chen 2020, Sec. 2.4 and
3.2): Algorithm 2 builds adversarial sets from the train and test splits of a trained
classifier, the classifier is fine-tuned on the training data plus the train-split set, and
Table 3 compares the two models (``fi_at.json`` in the run directory).

Unlike the other defenses it starts from an existing classifier (``model``), whose
architecture the fine-tuned run keeps.
"""

from advforge.defenses.influence.dataset import (
    NO_CONFUSION,
    AdversarialSet,
    Selection,
    adversarial_set,
    build_adversarial_set,
    confusion_targets,
    select_vulnerable,
    vulnerable_pixels,
)
from advforge.defenses.influence.settings import FIAT, REPORT
from advforge.defenses.influence.table import CELLS, table3

__all__ = [
    "CELLS",
    "AdversarialSet",
    "FIAT",
    "NO_CONFUSION",
    "REPORT",
    "Selection",
    "adversarial_set",
    "build_adversarial_set",
    "confusion_targets",
    "select_vulnerable",
    "table3",
    "vulnerable_pixels",
]
