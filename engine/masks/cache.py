"""The per-clip cache of a neural masker's masks, so re-runs skip the network.

A lossless grey video (FFV1) under ``<model folder>/masks/``, keyed by the clip's path and
file identity (size and modification time), the frame range, the masker and its weights'
identity; written to a ``.part`` file of this process and moved into place only once every
mask of the range is in it.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ..video import FrameRange, open_video


class MaskCache:
    def __init__(self, cache_dir: str, clip, frame_range: FrameRange, masker: str, weights: str):
        self.count = len(frame_range)
        # A clip or checkpoint replaced at the same path (a re-export, an update) is a new key.
        stat = os.stat(weights)
        key = json.dumps([os.path.abspath(clip.info.path), clip.identity(), frame_range.as_list(),
                          masker, stat.st_size, stat.st_mtime_ns])
        folder = os.path.join(cache_dir, "masks")
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, hashlib.sha1(key.encode()).hexdigest()[:16] + f"-{masker}.mkv")
        self.stored = open_video(self.path).frames(FrameRange(0, self.count)) if os.path.exists(self.path) else None
        self.writer = None
        self.written = 0

    def read(self) -> np.ndarray:
        """The next cached mask, ``(H, W) float32`` in {0, 1}."""
        _, grey, _ = next(self.stored)
        return (grey[..., 0] >= 128).astype(np.float32)

    def write(self, mask: np.ndarray) -> None:
        """Add the next mask, ``(H, W) uint8`` 0/255; the last one of the range completes the file."""
        import av

        if self.writer is None:
            # Its own part file: another run masking the same clip at the same time writes its own.
            self.part = f"{self.path}.{os.getpid()}.part.mkv"
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
            os.replace(self.part, self.path)
