"""Optimiser steps and learning-rate schedules of the learned attackers' training."""

from __future__ import annotations

import math

import torch
from torch import nn

from advforge.errors import InputError
from advforge.generative.parallel import average_gradients


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter]) -> None:
    """One optimizer step on ``params`` only: gradients via autograd.grad, so the target, the
    local model and the other network never receive a ``.grad``."""
    grads = torch.autograd.grad(loss, params)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    average_gradients(params)  # data parallel: the mean over ranks (identity in one process)
    opt.step()
    opt.zero_grad(set_to_none=True)


def lr_factor(schedule: str, epoch: float, epochs: int) -> float:
    """``constant``: 1; ``cosine``: half a cosine from 1 down to 0 over ``epochs``."""
    if schedule == "cosine" and epochs > 0:
        return 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))
    if schedule not in ("constant", "cosine"):
        raise InputError(f"lr_schedule must be constant or cosine, got {schedule!r}")
    return 1.0


def set_lr(lr: float, *optimizers: torch.optim.Optimizer) -> None:
    """Set every parameter group's learning rate of ``optimizers`` to ``lr``."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = lr
