"""Masking with InSPyReNet through transparent-background's ``Remover``, from a local
checkpoint, with the mask video cached per clip so re-runs skip the network.

Masks are the network's map thresholded at 0.5. The cache is a lossless grey video (FFV1)
under ``<model folder>/masks/``, keyed by the clip's path and file identity (size and
modification time), the frame range, the mode and the checkpoint's identity; it is written
to a ``.part`` file and moved into place only once complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings

import numpy as np

from ..errors import EngineError
from ..video import FrameRange, open_video

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
        self.count = len(frame_range)
        # A clip or checkpoint replaced at the same path (a re-export, an update) is a new key.
        weights = os.stat(checkpoint)
        key = json.dumps([os.path.abspath(clip.info.path), clip.identity(), frame_range.as_list(),
                          mode, weights.st_size, weights.st_mtime_ns])
        folder = os.path.join(cache_dir, "masks")
        os.makedirs(folder, exist_ok=True)
        self.cache = os.path.join(folder, hashlib.sha1(key.encode()).hexdigest()[:16] + f"-{mode}.mkv")
        self.cached = None
        if os.path.exists(self.cache):
            self.cached = open_video(self.cache).frames(FrameRange(0, self.count))
            self.name = "inspyrenet (cached)"
        self.remover = None
        self.writer = None
        self.written = 0

    def __call__(self, index, rgb, alpha):
        if self.cached is not None:
            _, grey, _ = next(self.cached)
            return (grey[..., 0] >= 128).astype(np.float32)
        if self.remover is None:
            self.remover = load_remover(self.checkpoint, self.mode, self.device, self.config_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            mask = segment(self.remover, rgb)
        self._write(mask)
        return mask.astype(np.float32) / 255.0

    def _write(self, mask: np.ndarray) -> None:
        import av

        if self.writer is None:
            # Its own part file: another run masking the same clip at the same time writes its own.
            self.part = f"{self.cache}.{os.getpid()}.part.mkv"
            self.writer = av.open(self.part, "w")
            self.stream = self.writer.add_stream("ffv1", rate=24)
            self.stream.width, self.stream.height = mask.shape[1], mask.shape[0]
            self.stream.pix_fmt = "gray"
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(mask, format="gray")):
            self.writer.mux(packet)
        self.written += 1
        if self.written == self.count:                  # every mask of the range: keep them
            for packet in self.stream.encode():
                self.writer.mux(packet)
            self.writer.close()
            os.replace(self.part, self.cache)
