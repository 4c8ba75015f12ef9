"""Chunked runs equal whole-batch runs; the automatic chunk rule follows threads and modes."""

from __future__ import annotations

import pytest
import torch
from hyper_fast import fast_hyper

import advforge.attacks as attacks
from advforge.attacks.chunking import CPU_CHUNK, ChunkedAttack, batch_slices
from advforge.errors import InputError

CHUNKED = [n for n in attacks.names() if isinstance(attacks.create(n), ChunkedAttack)]


def test_the_per_example_attacks_are_chunked():
    assert {"fgsm", "fgsm_ll", "pgd", "pgd_l2", "cw_l2", "cw_linf", "apgd_ce", "apgd_t"} <= set(
        CHUNKED)


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("name", CHUNKED)
def test_chunked_output_equals_whole_batch_output(name, targeted, toy_model, toy_batch):
    x, y = toy_batch
    if targeted and not attacks.ATTACKS.get(name).takes_target:
        pytest.skip(f"{name} picks its own target")
    t = (y + 1) % 4 if targeted else None
    out = {}
    for size in (5, 1000):
        attack = attacks.create(name, chunk_size=size, **fast_hyper(name))
        out[size] = attack(toy_model, x, y, target=t, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(out[5], out[1000], rtol=0, atol=1e-5)  # float reassociation


@pytest.fixture
def threads():
    saved = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(saved)


def test_automatic_chunks_grow_with_threads_and_need_an_eval_model(toy_model, threads):
    x = torch.zeros(300, 1, 12, 12)
    threads(1)
    assert [s.start for s in batch_slices(toy_model, x, None)] == [0, 64, 128, 192, 256]
    assert len(batch_slices(toy_model.train(), x, None)) == 1  # train mode: batch-dependent
    toy_model.eval()
    threads(2)
    assert [s.start for s in batch_slices(toy_model, x, None)] == [0, 2 * CPU_CHUNK,
                                                                  4 * CPU_CHUNK]
    threads(8)
    assert len(batch_slices(toy_model, x, None)) == 1  # 512 per chunk: the whole batch
    assert len(batch_slices(toy_model, x, 40)) == 8  # an explicit size always applies


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "64"])
def test_bad_chunk_size_is_rejected(size):
    with pytest.raises(InputError, match="chunk_size"):
        attacks.create("pgd", chunk_size=size)
