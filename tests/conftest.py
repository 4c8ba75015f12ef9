"""Shared fixtures: a tiny seeded CPU classifier trained on a separable toy task, and a batch
(the task itself is in toy_task.py); a dry-run Model B run directory for the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from toy_task import fresh_toy_model, make_toy_batch, make_toy_model

from advforge.cli import main
from advforge.models.wrapper import ImageClassifier


@pytest.fixture(scope="session")
def _toy_model_state() -> dict:
    """Trained on one thread, as `make test` runs: a float sum's order changes with the
    thread count, and tests that pin a tiny training's outputs start from these weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_toy_model().state_dict()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def toy_model(_toy_model_state) -> ImageClassifier:
    """A fresh copy per test, in eval mode, so tests cannot leak state into each other."""
    model = fresh_toy_model()
    model.load_state_dict(_toy_model_state)
    return model.eval()


@pytest.fixture
def toy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return make_toy_batch(32, seed=7)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A dry-run Model B run directory, trained once per test module; its config.json records
    the synthetic dataset."""
    out = tmp_path_factory.mktemp("cli") / "model"
    assert main(["train-classifier", "--arch", "model_b", "--dry-run", "--quiet",
                 "--out", str(out)]) == 0
    return out
