"""PGD-AT under DistributedDataParallel (two gloo processes), and a run killed mid-epoch.

With the random start off, PGD is deterministic, so two ranks that each attack and train on
half of every global batch must reach the one-process weights up to float rounding.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch
import torch.multiprocessing as mp
from ports import free_port
from quadrants import make_splits

from advforge.defenses import defend, settings_class
from advforge.models import load_model
from advforge.training import STATE_FILE, TrainConfig
from advforge.training.state import read_train_state


def _train(out: str, **kw) -> TrainConfig:
    return TrainConfig(**{"arch": "model_b", "dataset": "quadrants", "epochs": 2,
                          "batch_size": 16, "optimizer": "sgd", "lr": 0.05, "augment": "none",
                          "seed": 0, "out": out, **kw})


def _settings():
    return settings_class("pgd-at")(eps=0.2, steps=3, random_start=False)


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    defend(_settings(), _train(os.path.join(root, "ddp")), make_splits(n_train=96, n_test=40))


def test_two_process_pgd_at_matches_one_process(tmp_path):
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    defend(_settings(), _train(str(tmp_path / "single")), make_splits(n_train=96, n_test=40))
    a, b = load_model(tmp_path / "ddp").state_dict(), load_model(tmp_path / "single").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


_SCRIPT = """
import sys, torch
sys.path[:0] = {paths!r}
from quadrants import make_splits
from advforge.defenses import defend, settings_class
from advforge.training import TrainConfig
torch.set_num_threads(1)
train = TrainConfig(arch="model_b", dataset="quadrants", epochs=2, batch_size=16,
                    optimizer="sgd", lr=0.05, augment="none", seed=0, out={out!r})
defend(settings_class("pgd-at")(eps=0.2, steps=3), train, make_splits(n_train=N_TRAIN))
"""
N_TRAIN = 256


def _run_killed_mid_epoch(out) -> None:
    """Start a 2-epoch run in a subprocess and SIGKILL it once the first epoch is saved."""
    code = _SCRIPT.format(paths=sys.path, out=str(out)).replace("N_TRAIN", str(N_TRAIN))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    while not (out / STATE_FILE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.1)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    cut, full = tmp_path / "cut", tmp_path / "full"
    _run_killed_mid_epoch(cut)
    assert read_train_state(cut / STATE_FILE)[1]["epoch"] == 1  # killed in the second epoch
    assert not (cut / "model.safetensors").exists()
    splits = make_splits(n_train=N_TRAIN)
    settings = settings_class("pgd-at")(eps=0.2, steps=3)
    defend(settings, _train(str(cut), lr=0.05, resume=True), splits)
    defend(settings, _train(str(full), lr=0.05), splits)
    a, b = load_model(cut).state_dict(), load_model(full).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
