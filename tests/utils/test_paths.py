"""Output paths are checked before any compute, and written files follow the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from advforge.errors import InputError
from advforge.utils.checkpoint import atomic_write_text, save_safetensors
from advforge.utils.paths import check_output_dir, check_output_file


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write to. Permission bits do not stop root, so under
    root the test uses /sys, which refuses new files even to root."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    probe = locked / "probe"
    try:
        probe.touch()
    except OSError:
        return locked
    probe.unlink()
    sys_dir = Path("/sys")
    if sys_dir.is_dir() and _cannot_create(sys_dir):
        return sys_dir
    pytest.skip("no directory here refuses writes to this user")


def _cannot_create(directory: Path) -> bool:
    try:
        (directory / ".advforge-test").touch()
    except OSError:
        return True
    (directory / ".advforge-test").unlink()
    return False


def test_a_new_or_existing_directory_is_accepted_and_nothing_is_created(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output_dir(tmp_path) == tmp_path
    assert sorted(tmp_path.iterdir()) == []  # the probe file is gone, no directory was made


def test_directory_refused_when_a_file_is_in_the_way(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="existing file, not a directory"):
        check_output_dir(blocker)
    with pytest.raises(InputError, match="lies under .*file.txt, which is a file"):
        check_output_dir(blocker / "sub" / "dir")


def test_directory_refused_when_not_writable(tmp_path):
    locked = _unwritable_dir(tmp_path)
    try:
        with pytest.raises(InputError, match="cannot be written"):
            check_output_dir(locked / "out")
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_file_refused_when_it_exists_has_the_wrong_suffix_or_sits_under_a_file(tmp_path):
    existing = tmp_path / "adv.safetensors"
    existing.write_bytes(b"")
    with pytest.raises(InputError, match="already exists"):
        check_output_file(existing, ".safetensors")
    with pytest.raises(InputError, match="existing directory"):
        check_output_file(tmp_path, None)
    with pytest.raises(InputError, match=r"\.safetensors file"):
        check_output_file(tmp_path / "adv.pt", ".safetensors")
    with pytest.raises(InputError, match="which is a file"):
        check_output_file(existing / "adv.safetensors", ".safetensors")
    assert check_output_file(tmp_path / "new" / "a.safetensors", ".safetensors").name == (
        "a.safetensors")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_and_directories_follow_the_umask(tmp_path, umask_022):
    import torch

    atomic_write_text(tmp_path / "new" / "report.md", "x")
    save_safetensors(tmp_path / "t.safetensors", {"a": torch.zeros(1)})
    assert stat.S_IMODE((tmp_path / "new" / "report.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "t.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755
