"""Shared fixtures: clips generated here (the suite needs no third-party media)."""
from __future__ import annotations

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


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA GPU here"))])
def device(request):
    """Runs a test on the CPU, and again on CUDA where there is a GPU."""
    import torch

    return torch.device(request.param)
