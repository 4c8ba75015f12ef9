"""The shared reader of resumable training states (classifier and GAN runs alike)."""

from __future__ import annotations

import json

import pytest
import torch

from advforge.errors import CheckpointError
from advforge.utils.checkpoint import read_state_file, save_safetensors


def _write(path, fmt="fmt-v1", state='{"epoch": 2}'):
    meta = {"format": fmt} if state is None else {"format": fmt, "state": state}
    save_safetensors(path, {"w": torch.arange(6.0).reshape(2, 3), "s": torch.tensor(1.5)},
                     metadata=meta)


def test_round_trip_returns_tensors_and_document(tmp_path):
    _write(tmp_path / "state.safetensors")
    tensors, doc = read_state_file(tmp_path / "state.safetensors", "fmt-v1")
    assert doc == {"epoch": 2}
    assert torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3))
    assert tensors["s"].shape == () and tensors["s"].item() == 1.5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fmt": "other-v1"}, "not an advforge training state of format fmt-v1"),
    ({"state": None}, "bad metadata"),
    ({"state": "{not json"}, "bad metadata"),
    ({"state": json.dumps([1, 2])}, "not an object"),
])
def test_wrong_format_or_document_is_a_checkpoint_error(tmp_path, kwargs, message):
    _write(tmp_path / "state.safetensors", **kwargs)
    with pytest.raises(CheckpointError, match=message):
        read_state_file(tmp_path / "state.safetensors", "fmt-v1")


def test_missing_and_truncated_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no training state to resume"):
        read_state_file(tmp_path / "absent.safetensors", "fmt-v1")
    path = tmp_path / "state.safetensors"
    _write(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupt training state"):
        read_state_file(path, "fmt-v1")
