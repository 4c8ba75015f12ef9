"""Table 3 of Shi, Shu, Zhu & Chen (2020): accuracy of the original and the fine-tuned model
on the adversarial sets and on clean data plus each set, every figure with its n."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from advforge.training import count_correct

# (cell, pieces joined): Adv1 / Tr.+Adv1 / Adv2 / Ts.+Adv2 of the paper, plus clean test and
# the clean images each set was made from. Algorithm 2 picks images the original model gets
# right but barely (p_y <= 0.83): another model of the same accuracy misses some of them even
# unperturbed, which bounds what fine-tuning can recover on a set.
CELLS = (
    ("adv_train", ("adv_train",)),
    ("train_plus_adv_train", ("train", "adv_train")),
    ("adv_test", ("adv_test",)),
    ("test", ("test",)),
    ("test_plus_adv_test", ("test", "adv_test")),
    ("adv_train_sources", ("adv_train_sources",)),
    ("adv_test_sources", ("adv_test_sources",)),
)


def accuracy_cell(model: nn.Module, parts: list[tuple[torch.Tensor, torch.Tensor]],
                  batch_size: int = 1000) -> dict[str, Any]:
    """``{"accuracy", "correct", "n"}`` over the union of ``parts``; accuracy None when n = 0."""
    correct = sum(count_correct(model, x, y, batch_size) for x, y in parts if len(y))
    n = sum(int(len(y)) for _, y in parts)
    return {"accuracy": correct / n if n else None, "correct": int(correct), "n": n}


def table3(models: dict[str, nn.Module], data: dict[str, tuple[torch.Tensor, torch.Tensor]],
           batch_size: int = 1000) -> dict[str, dict[str, dict[str, Any]]]:
    """Every cell of Table 3 for every model.

    Args:
        models: row name (``"original"``, ``"fine_tuned"``) -> classifier.
        data: ``"train"``, ``"test"``, ``"adv_train"``, ``"adv_test"`` -> (x, y), and
            optionally ``"adv_train_sources"``, ``"adv_test_sources"`` (the sets' clean
            source images); a cell whose pieces are missing is left out.
        batch_size: images per forward pass.

    Returns:
        ``{row: {cell: {"accuracy", "correct", "n"}}}`` with the cells of :data:`CELLS`.
    """
    return {row: {cell: accuracy_cell(model, [data[p] for p in pieces], batch_size)
                  for cell, pieces in CELLS if all(p in data for p in pieces)}
            for row, model in models.items()}
