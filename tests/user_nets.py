"""Writes a small user package (networks that are not in the zoo) for the own-model tests."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        """One strided convolution and a linear head: not a zoo architecture."""

        def __init__(self, in_channels=1, classes=10):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, 3, 3, stride=2)
            self.head = nn.Linear(3 * 13 * 13, classes)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).flatten(1))


    def make_net():
        return TinyNet()


    def seven_classes():
        return TinyNet(classes=7)


    def colour_net():
        return TinyNet(in_channels=3)


    def flat_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


    def raises():
        raise RuntimeError("needs a GPU")


    def not_a_module():
        return 42


    def lazy_net():
        """Imports another top-level module of the working directory only when called."""
        import importlib

        return importlib.import_module(__name__ + "_extra").make()


    NOT_CALLABLE = 3
''')


def write_package(root: Path, name: str) -> str:
    """Write ``root/name/__init__.py`` and forget any module of that name imported before."""
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "__init__.py").write_text(SOURCE)
    (root / f"{name}_extra.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Linear(2, 2)\n")
    forget(name)
    return name


def forget(name: str) -> None:
    """Drop ``name``, its submodules and its ``_extra`` module from ``sys.modules``."""
    for key in [k for k in sys.modules if k.split(".")[0] in (name, name + "_extra")]:
        del sys.modules[key]
