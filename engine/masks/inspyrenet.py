"""Masking with InSPyReNet through transparent-background's ``Remover``, from a local
checkpoint, with the masks cached per clip (``cache.MaskCache``) so re-runs skip the
network. Masks are the network's map thresholded at 0.5.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings

import numpy as np

from ..errors import EngineError
from ..video import FrameRange
from .cache import MaskCache

THRESHOLD = 0.5


def load_remover(checkpoint: str, mode: str, device, config_dir: str):
    """transparent-background's Remover on ``checkpoint``; its config folder is ``config_dir``."""
    os.makedirs(config_dir, exist_ok=True)
    os.environ["TRANSPARENT_BACKGROUND_FILE_PATH"] = config_dir      # it writes its config here
    with warnings.catch_warnings():         # it warns about optional GUI and matting packages
        warnings.simplefilter("ignore")
        try:
            from transparent_background import Remover
        except ImportError:
            raise EngineError("InSPyReNet masking needs the transparent-background package "
                              "(see docs/MODELS.md)") from None
        try:   # it prints its settings: keep stdout for the JSON progress lines
            with contextlib.redirect_stdout(sys.stderr):
                return Remover(mode=mode, ckpt=os.path.abspath(checkpoint), device=str(device),
                               resize="static")
        except Exception as exc:
            raise EngineError(f"cannot load InSPyReNet weights from {checkpoint} ({type(exc).__name__}); "
                              f"run `dynasketch models download inspyrenet-{mode}`") from None


def segment(remover, rgb: np.ndarray) -> np.ndarray:
    """The subject of an ``(H, W, 3)`` uint8 frame as ``(H, W)`` uint8 0/255: the Remover's own
    pre-processing and network, upsampled and thresholded where the network ran. The same
    mask as ``remover.process(rgb, type="map", threshold=0.5)`` without its full-size
    float64 post-processing (~70 ms a 1080p frame on the CPU)."""
    import torch
    import torch.nn.functional as F

    x = remover.cv2_transform(image=rgb)["image"][None].to(remover.device)
    with torch.no_grad():
        pred = F.interpolate(remover.model(x), rgb.shape[:2], mode="bilinear", align_corners=True)
        return ((pred[0, 0] > THRESHOLD).to(torch.uint8) * 255).cpu().numpy()


class InSPyReNetMasker:
    name = "inspyrenet"

    def __init__(self, checkpoint: str, clip, frame_range: FrameRange, device, cache_dir: str,
                 mode: str = "base"):
        self.checkpoint, self.mode, self.device = checkpoint, mode, device
        self.config_dir = os.path.join(cache_dir, "transparent-background")
        self.cache = MaskCache(cache_dir, clip, frame_range, mode, checkpoint)
        if self.cache.stored is not None:
            self.name = "inspyrenet (cached)"
        self.remover = None

    def __call__(self, index, rgb, alpha):
        if self.cache.stored is not None:
            return self.cache.read()
        if self.remover is None:
            self.remover = load_remover(self.checkpoint, self.mode, self.device, self.config_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            mask = segment(self.remover, rgb)
        self.cache.write(mask)
        return mask.astype(np.float32) / 255.0
