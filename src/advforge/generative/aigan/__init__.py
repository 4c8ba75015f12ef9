"""AI-GAN: Attack-Inspired GAN (Bai et al., "Towards Efficiently Evaluating the Robustness of
Deep Neural Networks in IoT Systems: A GAN-based Method", Sec. IV, Algorithm 1).

A conditional generator G(x, t) forges a targeted perturbation in one forward pass; a two-head
discriminator D separates clean from perturbed images (source head, Eq. 6) and classifies both
G's examples (Eq. 8) and untargeted PGD-7 examples made against its own class head (Eq. 7), so
the class head is adversarially robust and G has to produce stronger attacks to fool it.
In black-box mode (Sec. V-D) G attacks a local model distilled from the query-only target.

Modules: :mod:`.config` (the nested config), :mod:`.steps` (the G and D updates),
:mod:`.blackbox` (oracle, local model, distiller, prober), :mod:`.trainer` (networks,
optimizers, Algorithm 1's iteration) and :mod:`.fit` (phases, epochs, checkpoint).
docs/aigan.md records where and why the defaults depart from the paper.
"""

from __future__ import annotations

from advforge.generative.aigan.blackbox import LOCAL_MODEL_DIR, save_local_model, saved_local_choice
from advforge.generative.aigan.config import (
    AIGANConfig,
    AIGANObjective,
    AIGANTraining,
    AttackerConfig,
    BlackBoxConfig,
    PretrainConfig,
)
from advforge.generative.aigan.fit import fit, train_aigan
from advforge.generative.aigan.trainer import AIGANTrainer

__all__ = [
    "LOCAL_MODEL_DIR",
    "AIGANConfig",
    "AIGANObjective",
    "AIGANTrainer",
    "AIGANTraining",
    "AttackerConfig",
    "BlackBoxConfig",
    "PretrainConfig",
    "fit",
    "save_local_model",
    "saved_local_choice",
    "train_aigan",
]
