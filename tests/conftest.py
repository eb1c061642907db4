"""Shared fixtures: clips generated here (the suite needs no third-party media)."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from media import moving_disc, write_video

@pytest.fixture(scope="session")
def disc_clip(tmp_path_factory) -> dict:
    """A 12-frame mp4 of a moving disc, its mask video, and the truth (speed, px/frame)."""
    folder = tmp_path_factory.mktemp("disc")
    frames, masks = moving_disc()
    video = write_video(str(folder / "disc.mp4"), frames)
    mask = write_video(str(folder / "disc.mask.mp4"), np.repeat(masks[..., None], 3, -1))
    return {"video": video, "mask": mask, "frames": frames, "speed": 3.0}


def has_cuda() -> bool:
    """A CUDA GPU for torch; False without torch too (the add-on's tests can run in a
    Blender-only environment, e.g. bpy 4.5 in a second venv)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not has_cuda(),
                                                                              reason="no CUDA GPU here"))])
def device(request):
    """Runs a test on the CPU, and again on CUDA where there is a GPU."""
    import torch

    return torch.device(request.param)


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of 64 KiB (tmpfs, mounted as root; skipped elsewhere) that the test
    can grow: ``grow(bytes)``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")

    def grow(size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)

    yield disk, grow
    subprocess.run(["umount", "-l", str(disk)], check=False)
