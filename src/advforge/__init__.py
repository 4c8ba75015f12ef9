"""advforge: test and harden image classifiers against adversarial examples."""

from __future__ import annotations

__version__ = "0.1.0"

from advforge import attacks, data, eval, models  # noqa: E402,A004
from advforge.errors import AdvforgeError  # noqa: E402
from advforge.generative import load_attacker  # noqa: E402
from advforge.models import load_model  # noqa: E402

__all__ = [
    "AdvforgeError", "__version__", "attacks", "data", "eval", "load_attacker", "load_model",
    "models",
]
