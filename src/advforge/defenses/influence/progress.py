"""Algorithm 2's swarm search, checkpointed after every attack batch.

On a large or slow model the search is the long part of ``fi-at`` (thousands of selected
images, each a full fi_pso run of seconds), so an interrupted run must not start it over.
Before the first batch the split's attack plan (Algorithm 2, steps 1-3: which images, which
targets, which pixels; an image-level FI over the whole split) is written, and after each
batch of ``attack_batch`` images the attacks made so far and the state of the random
generator that seeds the swarms, all to one safetensors file in the run directory, the
search's key (settings, model, data) in its metadata. A later run with the same key restores
them, skips the plan's steps and continues with the next batch: the generator state makes the
continued search draw exactly what the uninterrupted one would have, so the sets match.
One file written atomically means a reader never sees attacks without their key or count.
The file is removed once the finished sets are saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from advforge.utils import atomic_write_bytes

if TYPE_CHECKING:
    from advforge.defenses.influence.dataset import AttackPlan

PROGRESS_FILE = "fi_at_search.safetensors"


class SearchProgress:
    """The saved attack batches of each split's search, for one search key.

    Args:
        out: the run directory (None: nothing is saved or restored).
        key: what the search is a function of (settings, model, data sizes, seed).
    """

    def __init__(self, out: Path | None, key: dict[str, Any]) -> None:
        self.path = None if out is None else Path(out) / PROGRESS_FILE
        self.key = json.dumps(key, sort_keys=True)
        self.tensors: dict[str, torch.Tensor] = {}
        self.generator_state: torch.Tensor | None = None
        self._load()

    def _load(self) -> None:
        """Take the saved batches when the file holds this key; ignore any other file (a
        search with other settings overwrites it on its first batch)."""
        if self.path is None or not self.path.is_file():
            return
        try:
            with safe_open(str(self.path), framework="pt") as f:
                if (f.metadata() or {}).get("key") != self.key:
                    return
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except (SafetensorError, OSError, ValueError):
            return  # unreadable: the search starts over and replaces it
        self.generator_state = tensors.pop("generator_state", None)
        self.tensors = tensors

    def restore(self, part: str, generator: torch.Generator | None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The attack batches of ``part`` done so far, as (x_adv, met) lists of one tensor
        each (empty lists when none); sets ``generator`` to the state after the last saved
        batch, where the search continues."""
        if f"{part}.x_adv" not in self.tensors:
            return [], []
        if generator is not None and self.generator_state is not None:
            generator.set_state(self.generator_state)
        return [self.tensors[f"{part}.x_adv"]], [self.tensors[f"{part}.met"]]

    def plan(self, part: str) -> AttackPlan | None:
        """``part``'s saved attack plan (None when this checkpoint holds none)."""
        from advforge.defenses.influence.dataset import COUNTS, AttackPlan

        names = [f"{part}.plan.{n}" for n in ("index", "target", "pixels", "counts")]
        if not all(n in self.tensors for n in names):
            return None
        index, target, pixels, counts = (self.tensors[n] for n in names)
        if not (index.shape[0] == target.shape[0] == pixels.shape[0]
                and counts.shape == (len(COUNTS),)):
            return None  # not a plan this code wrote: make it again
        return AttackPlan(index.long(), target.long(), pixels.bool(),
                          dict(zip(COUNTS, counts.tolist(), strict=True)))

    def save_plan(self, part: str, plan: AttackPlan) -> None:
        """Save ``part``'s attack plan (before its first batch)."""
        from advforge.defenses.influence.dataset import COUNTS

        self.tensors.update({
            f"{part}.plan.index": plan.index.cpu().long().contiguous(),
            f"{part}.plan.target": plan.target.cpu().long().contiguous(),
            f"{part}.plan.pixels": plan.pixels.cpu().bool().contiguous(),
            f"{part}.plan.counts": torch.tensor([plan.counts[k] for k in COUNTS],
                                                dtype=torch.long)})
        self._write()

    def record(self, part: str, x_adv: list[torch.Tensor], met: list[torch.Tensor],
               generator: torch.Generator | None) -> None:
        """Save ``part``'s batches so far (and the other parts' saved ones) with the
        generator's state."""
        self.tensors[f"{part}.x_adv"] = torch.cat(x_adv).detach().cpu().contiguous()
        self.tensors[f"{part}.met"] = torch.cat(met).detach().cpu().contiguous()
        if generator is not None:
            self.generator_state = generator.get_state().cpu()
        self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        tensors = dict(self.tensors)
        if self.generator_state is not None:
            tensors["generator_state"] = self.generator_state
        atomic_write_bytes(self.path, save(tensors, metadata={"key": self.key}))

    def done(self, part: str) -> int:
        """How many images of ``part`` the saved batches cover."""
        saved = self.tensors.get(f"{part}.met")
        return 0 if saved is None else int(saved.shape[0])

    def clear(self) -> None:
        """Remove the file (the finished sets are saved)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
