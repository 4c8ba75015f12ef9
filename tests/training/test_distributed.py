"""fit under DistributedDataParallel: two CPU processes with the gloo backend.

With a global batch B split as B/2 per rank, each step averages the gradients of exactly the
images one process would see in its batch (utils.distributed.shard_indices), so a model with
no dropout or BatchNorm must end with the single-process weights up to float rounding.
"""

from __future__ import annotations

import json
import os

import torch
import torch.multiprocessing as mp
from ports import free_port
from quadrants import make_splits

from advforge.models import load_model
from advforge.training import TrainConfig, fit


def _config(out: str) -> TrainConfig:
    return TrainConfig(arch="model_b", dataset="quadrants", epochs=2, batch_size=16,
                       optimizer="sgd", lr=0.05, augment="none", seed=0, out=out)


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    result = fit(_config(os.path.join(root, "ddp")), make_splits(n_train=96, n_test=40))
    keep = ("test_accuracy", "train_accuracy", "train_loss", "world_size")
    with open(os.path.join(root, f"rank{rank}.json"), "w") as f:
        json.dump({k: result[k] for k in keep}, f)


def test_two_process_gloo_training_matches_one_process(tmp_path):
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1] and ranks[0]["world_size"] == 2  # all ranks agree
    files = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    # rank 0 wrote each file once and left no temporary files behind
    assert files == ["config.json", "model.safetensors", "train_state.safetensors"]
    single = fit(_config(str(tmp_path / "single")), make_splits(n_train=96, n_test=40))
    a, b = load_model(tmp_path / "ddp").state_dict(), load_model(tmp_path / "single").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    assert abs(single["train_loss"] - ranks[0]["train_loss"]) < 1e-5


def test_shards_rebuild_the_single_process_batches():
    from advforge.utils.distributed import DistInfo, shard_indices

    order = torch.randperm(37, generator=torch.Generator().manual_seed(0))
    world, batch = 3, 6  # global batch 6 = 2 per rank
    shards = [shard_indices(order, DistInfo(rank=r, world_size=world)) for r in range(world)]
    assert {s.numel() for s in shards} == {12}  # equal step counts; the 1-image tail is dropped
    for i in range(0, 12, batch // world):
        together = torch.cat([s[i : i + batch // world] for s in shards]).sort().values
        step = i // (batch // world)
        assert torch.equal(together, order[step * batch : (step + 1) * batch].sort().values)
    single = shard_indices(order, DistInfo())
    assert torch.equal(single, order)
