"""What each inference lever buys alone, for Table VI: the calls the lever table times.

The reference path is float32, one batch, batch norm applied as it is (no folding into the
convolution before it, no fusing of the conditional gain and bias) and NCHW weights; each
other call changes one thing from it, ``served`` is the run as it forges, and
``paper_unet_reference`` is the paper configuration's U-Net on the reference path. The
calls are timed in turns (:func:`aigan_bench.cost.interleaved_seconds`), in each of the
timing worker's fresh processes, so a lever's speed-up compares calls made under the same
load instead of blocks timed minutes apart.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch

from advforge.generative import GeneratorAttack, nets
from advforge.generative.aigan.config import PAPER_CONFIG, AIGANConfig


@contextlib.contextmanager
def unfolded() -> Iterator[None]:
    """Batch norm applied as it is in eval mode: no folding into the convolution before it,
    no fusing of the conditional gain and bias (:func:`advforge.generative.nets.eval_affine`
    answers None, so every layer takes its unfused path; it is read at every forward)."""
    real = nets.eval_affine
    nets.eval_affine = lambda bn: None
    try:
        yield
    finally:
        nets.eval_affine = real


def paper_generator(g: nets.PerturbationGenerator, eps: float,
                    device: torch.device) -> nets.PerturbationGenerator:
    """The paper configuration's G for ``g``'s data (weights do not change its time)."""
    cfg = AIGANConfig.from_flat({**PAPER_CONFIG, "eps": eps})
    return nets.build_generator(cfg.generator.arch, g.in_channels, g.image_size,
                                g.num_classes, eps,
                                **cfg.generator.build_kwargs()).to(device).eval()


def lever_calls(attack: GeneratorAttack, x: torch.Tensor, y: torch.Tensor,
                t: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """One call per lever (reference, chunks, bfloat16, channels_last, fold_batchnorm,
    served, paper_unet_reference), each forging (x, t) once."""
    # the generators keep NHWC weights (nets._channels_last): the reference runs an NCHW
    # copy, and the channels-last lever the generator as it is
    nchw = copy.deepcopy(attack.generator).to(memory_format=torch.contiguous_format)
    reference = dataclasses.replace(attack, generator=nchw, precision="float32",
                                    chunk_size=x.shape[0])
    paper = paper_generator(attack.generator, attack.eps, x.device).to(
        memory_format=torch.contiguous_format)

    def call(a: GeneratorAttack, *, folded: bool = False) -> Callable[[], Any]:
        def forge() -> Any:
            if folded:
                return a(None, x, y, target=t)
            with unfolded():
                return a(None, x, y, target=t)
        return forge

    return {"reference": call(reference),
            "chunks": call(dataclasses.replace(reference, chunk_size=None)),
            "bfloat16": call(dataclasses.replace(reference, precision="bfloat16")),
            "channels_last": call(dataclasses.replace(reference, generator=attack.generator)),
            "fold_batchnorm": call(reference, folded=True),
            "served": call(attack, folded=True),
            "paper_unet_reference": call(dataclasses.replace(reference, generator=paper))}
