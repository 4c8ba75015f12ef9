"""adv-net under DistributedDataParallel (two CPU processes, gloo): G stays the same everywhere.

Each rank trains G on its own shard; G's gradients (and Eq. 9's v) are averaged over the
ranks, so G's parameters must be identical on both ranks after training, and the D step's
single forward over [x, x + eps G_phi, x + eps G_{phi+hv}] must satisfy DDP.
"""

from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp
from ports import free_port
from safetensors.torch import load_file, save_file

from advforge.data import load
from advforge.defenses.advnet import AdvNet
from advforge.training import TrainConfig, fit


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    splits = load("synthetic", num_classes=4, channels=1, size=16, n_train=64, n_test=16)
    train = TrainConfig(arch="model_b", dataset="synthetic", epochs=1, batch_size=16,
                        optimizer="sgd", lr=0.05, augment="none", out=os.path.join(root, "run"))
    objective = AdvNet(eps=0.3, width=2, g_steps=2, g_updates=2).objective(splits, train)
    fit(train, splits, objective=objective)
    params = {k: v.detach().contiguous() for k, v in objective.g.named_parameters()}
    save_file(params, os.path.join(root, f"g{rank}.safetensors"))


def test_generator_parameters_agree_across_ranks(tmp_path):
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    g0, g1 = (load_file(str(tmp_path / f"g{r}.safetensors")) for r in range(2))
    assert g0.keys() == g1.keys()
    for key in g0:
        assert torch.equal(g0[key], g1[key]), key
    assert (tmp_path / "run" / "generator.safetensors").is_file()
