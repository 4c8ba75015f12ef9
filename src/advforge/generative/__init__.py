"""Learned attackers: AI-GAN (conditional, one generator for every target), AdvGAN (one
generator per target), AE4DNN and ATN/AAE (one reconstruction autoencoder per target), their
training loops, and the adapters that make a trained one an ordinary attack.

Example:
    >>> from advforge.generative import AIGANConfig, fit_aigan, load_attacker
    >>> cfg = AIGANConfig.from_flat({"epochs": 5})  # or AIGANConfig(training=...)
    >>> metrics = fit_aigan(cfg, model, splits.train, val=splits.test, run_dir="runs/aigan")
    >>> attack = load_attacker("runs/aigan")
    >>> x_adv = attack(model, x, y, target=torch.full_like(y, 3))
"""

from __future__ import annotations

from advforge.generative.advgan import AdvGANConfig
from advforge.generative.advgan import fit as fit_advgan
from advforge.generative.ae4dnn import AE4DNNConfig
from advforge.generative.ae4dnn import fit as fit_ae4dnn
from advforge.generative.ae_attack import AutoencoderAttack, RoutedAutoencoderAttack
from advforge.generative.aigan import AIGANConfig, AIGANTrainer
from advforge.generative.aigan import fit as fit_aigan
from advforge.generative.atn import ATNConfig
from advforge.generative.atn import fit as fit_atn
from advforge.generative.autoencoders import AUTOENCODERS, ConvAutoencoder, MLPAutoencoder
from advforge.generative.base import GeneratorAttack, RoutedGeneratorAttack, load_attacker
from advforge.generative.config import (
    DiscriminatorConfig,
    GeneratorConfig,
    TrainingConfig,
    from_flat,
    to_flat,
)
from advforge.generative.distill import Distiller, QueryOnly
from advforge.generative.nets import Discriminator, Generator, ShuffleGenerator

__all__ = [
    "AE4DNNConfig",
    "AIGANConfig",
    "ATNConfig",
    "AUTOENCODERS",
    "AutoencoderAttack",
    "ConvAutoencoder",
    "AIGANTrainer",
    "AdvGANConfig",
    "Discriminator",
    "DiscriminatorConfig",
    "Distiller",
    "Generator",
    "MLPAutoencoder",
    "GeneratorConfig",
    "GeneratorAttack",
    "QueryOnly",
    "RoutedAutoencoderAttack",
    "RoutedGeneratorAttack",
    "ShuffleGenerator",
    "TrainingConfig",
    "fit_advgan",
    "fit_ae4dnn",
    "fit_aigan",
    "fit_atn",
    "from_flat",
    "load_attacker",
    "to_flat",
]
