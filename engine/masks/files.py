"""Masking: which pixels of a frame are the subject.

A masker is called once per frame, in order: ``masker(index, rgb, alpha)`` returns an
``(H, W) float32`` mask in [0, 1] (1 = subject) or ``None`` for "the whole frame".
The offline maskers read the clip's alpha channel or a mask file; ``choose.build_masker``
chooses one.
"""
from __future__ import annotations

import numpy as np

from ..errors import EngineError
from ..video import FrameRange, VideoInfo, is_pattern, open_video

THRESHOLD = 0.5
MODES = ("auto", "none", "alpha", "inspyrenet", "inspyrenet-fast", "isnet", "isnet-small")    # --mask: these, or a mask file


def open_mask(path: str, start_number: int | None = None):
    """A mask file (``--mask PATH``): a video, an image, a folder or an image pattern, read
    from image ``start_number`` (``--mask-start-number``) as the clip's pattern is."""
    if start_number is not None and not is_pattern(path):
        raise EngineError(f"--mask-start-number needs a mask image pattern such as mask_%04d.png, not {path}")
    try:
        return open_video(path, start_number=start_number)
    except EngineError as exc:
        raise EngineError(f"--mask: {exc}") from None


def mask_file_identity(mode: str, start_number: int | None = None) -> list | None:
    """For a mask file, what changes when its files change; else None."""
    if mode in MODES:
        if start_number is not None:
            raise EngineError("--mask-start-number goes with a mask image pattern such as mask_%04d.png")
        return None
    return open_mask(mode, start_number).identity()


class NoMasker:
    name = "none"

    def __call__(self, index, rgb, alpha):
        return None


class AlphaMasker:
    """The clip's own alpha channel: opaque = subject."""

    name = "alpha"

    def __call__(self, index, rgb, alpha):
        if alpha is None:
            return None
        return (alpha.astype(np.float32) / 255.0 >= THRESHOLD).astype(np.float32)


class MaskFileMasker:
    """A mask video or image sequence (white = subject), streamed beside the clip."""

    name = "file"

    def __init__(self, path: str, clip: VideoInfo, frame_range: FrameRange, start_number: int | None = None):
        self.source = open_mask(path, start_number)
        info = self.source.info
        if (info.width, info.height) != (clip.width, clip.height):
            raise EngineError(f"--mask {path}: the mask is {info.width}x{info.height} but the clip "
                              f"is {clip.width}x{clip.height}; give a mask of the same size")
        if info.frame_count < frame_range.stop and info.frame_count != 1:
            raise EngineError(f"--mask {path}: the mask has {info.frame_count} frames but the clip "
                              f"has {clip.frame_count}; give one mask frame per clip frame")
        self.still = info.frame_count == 1
        self.frames = self.source.frames(FrameRange(0, 1) if self.still else frame_range)
        self.cached = None

    def __call__(self, index, rgb, alpha):
        if self.still and self.cached is not None:
            return self.cached
        mask_index, mask_rgb, _ = next(self.frames)
        if not self.still and mask_index != index:
            raise EngineError(f"mask frame {mask_index} does not line up with clip frame {index}")
        mask = (mask_rgb.astype(np.float32).mean(-1) / 255.0 >= THRESHOLD).astype(np.float32)
        if self.still:
            self.cached = mask
        return mask
