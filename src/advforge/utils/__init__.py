"""Seeding, checkpoint I/O, output-path and input validation, device and mode helpers."""

from advforge.utils.checkpoint import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_safetensors,
    read_json,
    save_safetensors,
)
from advforge.utils.modes import model_mode
from advforge.utils.paths import check_output_dir, check_output_file
from advforge.utils.seed import seed_everything
from advforge.utils.validate import check_eps, check_images, check_labels, check_targets

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_eps",
    "check_images",
    "check_labels",
    "check_output_dir",
    "check_output_file",
    "check_targets",
    "load_safetensors",
    "model_mode",
    "read_json",
    "save_safetensors",
    "seed_everything",
]
