"""Shared fixtures: clips generated here (the suite needs no third-party media)."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from media import moving_disc, write_video

# The model folder `dynasketch sketch` reads by default, where scripts/setup.sh puts the masking
# model (docs/MODELS.md); read before the suite points DYNASKETCH_HOME elsewhere.
SETUP_MODELS = os.path.abspath(os.path.expanduser(os.environ.get("DYNASKETCH_HOME") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dynasketch")))


@pytest.fixture(scope="session", autouse=True)
def empty_model_folder(tmp_path_factory):
    """Every test (and every engine it starts) sees an empty model folder unless it sets its
    own: what `auto` picks must not depend on the weights this machine happens to have."""
    before = os.environ.get("DYNASKETCH_HOME")
    os.environ["DYNASKETCH_HOME"] = str(tmp_path_factory.mktemp("no-models"))
    yield
    if before is None:
        os.environ.pop("DYNASKETCH_HOME", None)
    else:
        os.environ["DYNASKETCH_HOME"] = before


@pytest.fixture(scope="session")
def setup_isnet() -> str:
    """The path of the ISNet file scripts/setup.sh put in the default model folder (rembg's
    release, or IMG.LY's npm package where that cannot be reached); skips without one."""
    from engine import models
    from engine.masks.choose import ISNET_WEIGHTS

    for name in ISNET_WEIGHTS:
        spec = models.lookup(name)
        if models.check_file(spec, models.path_of(spec, SETUP_MODELS)) is None:
            return models.path_of(spec, SETUP_MODELS)
    pytest.skip(f"no ISNet weights in {SETUP_MODELS}: scripts/setup.sh fetches them")

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
