"""The attack registry instance, in its own module so attack files can import it without a cycle.

``advforge.attacks`` imports every attack module at the bottom of its ``__init__``; those modules
register themselves here, and ``advforge.attacks`` re-exports the same object as ``ATTACKS``.
"""

from __future__ import annotations

from advforge.attacks.base import Attack
from advforge.registry import Registry

ATTACKS: Registry[Attack] = Registry("attack")
