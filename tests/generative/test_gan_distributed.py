"""The GAN loops under torchrun-style data parallelism: two CPU processes with gloo.

Each rank trains on its own half of every global batch; gradients are averaged before every
step and batch-norm statistics come from rank 0, so the ranks must end with identical
networks, and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.multiprocessing as mp
from gen_helpers import tiny_aigan, tiny_local_model
from ports import free_port
from safetensors.torch import load_file, save_file
from toy_task import make_toy_batch, make_toy_model

from advforge.generative import AIGANTrainer, load_attacker
from advforge.generative import parallel as par
from advforge.generative.aigan import train_aigan
from advforge.generative.data import iterate_batches


def _worker(rank: int, world: int, port: int, root: str) -> None:
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        p = torch.nn.Parameter(torch.zeros(3))  # the averaging oracle: grads 1 and 2 -> 1.5
        p.grad = torch.full((3,), float(rank + 1))
        par.average_gradients([p])
        x, y = make_toy_batch(64, seed=3)
        cfg = tiny_aigan(black_box=True, pretrain=True, epochs=2, batch_size=16)
        trainer = AIGANTrainer.for_data(cfg, make_toy_model(), (x, y),
                                        local_model=tiny_local_model())
        metrics = train_aigan(trainer, (x, y), run_dir=os.path.join(root, "run"))
        nets = {f"{name}.{k}": v.detach().contiguous()
                for name, m in trainer.state_parts()[0].items()
                for k, v in m.state_dict().items()}
        save_file(nets, os.path.join(root, f"rank{rank}.safetensors"))
        with open(os.path.join(root, f"rank{rank}.json"), "w") as f:
            json.dump({"grad": p.grad.tolist(), "queries": metrics["target_queries"],
                       "success": metrics["success"]}, f)
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_one_aigan(tmp_path):
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert info[0]["grad"] == [1.5, 1.5, 1.5]
    assert info[0] == info[1]  # same success, same (summed) query count on every rank
    nets = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    assert nets[0].keys() == nets[1].keys()
    for key in nets[0]:  # G, D and the local model, weights and batch-norm buffers
        torch.testing.assert_close(nets[0][key], nets[1][key], atol=1e-6, rtol=1e-5)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "generator.safetensors", "train_state.safetensors"]
    generator = load_attacker(run).generator.state_dict()
    for key, value in generator.items():
        torch.testing.assert_close(value, nets[0][f"G.{key}"])


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_partition_each_global_batch(monkeypatch, world):
    x = torch.arange(40, dtype=torch.float32)[:, None, None, None]
    y = torch.arange(40)

    def batches(rank: int | None) -> list[torch.Tensor]:
        monkeypatch.setattr(par, "world", lambda: (0, 1) if rank is None else (rank, world))
        g = torch.Generator().manual_seed(0)
        return [yb for _, yb in iterate_batches(x, y, 12, g)]

    single = batches(None)
    shards = [batches(r) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # the same number of steps on every rank
    for step, full in enumerate(single):
        parts = [s[step] for s in shards if step < len(s)]
        if not parts:  # a last global batch too small to give each rank 2 rows
            assert full.numel() // world < 2
            continue
        per = full.numel() // world
        assert all(p.numel() == per for p in parts)
        together = torch.cat(parts)
        assert torch.equal(together, full[: per * world])  # disjoint, in the global order
