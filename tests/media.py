"""Test media made here: videos of a moving disc, and hand-made sketch files."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

SHARED_CLIPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "clips")


def write_video(path: str, frames: np.ndarray, fps: int = 24, codec: str | None = None,
                pix_fmt: str = "yuv420p", rotation: int = 0) -> str:
    """Encode ``frames`` (T, H, W, 3 or 4) uint8 with PyAV; ``rotation`` (degrees counter-clockwise)
    goes into the display matrix, as a phone writes a clip filmed upright."""
    import av

    codec = codec or {"mp4": "libx264", "mov": "libx264", "mkv": "libx264", "webm": "libvpx-vp9",
                      "avi": "mpeg4", "gif": "gif"}[path.rsplit(".", 1)[1]]
    with av.open(path, "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        src = "rgba" if frames.shape[-1] == 4 else "rgb24"
        for f in frames:
            for packet in stream.encode(__import__("av").VideoFrame.from_ndarray(f, format=src)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def moving_disc(t_len: int = 12, size: tuple[int, int] = (96, 128), speed: float = 3.0,
                radius: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """A textured disc moving right on a pale background: frames (T,H,W,3) and masks (T,H,W)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames, masks = [], []
    for t in range(t_len):
        cx, cy = 30 + speed * t, h / 2
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < radius ** 2
        stripes = ((xx - cx) // 5 % 2 == 0)
        img = np.full((h, w, 3), 235, np.uint8)
        img[inside] = np.where(stripes[inside, None], [30, 40, 160], [200, 60, 40])
        frames.append(img)
        masks.append(inside.astype(np.uint8) * 255)
    return np.stack(frames), np.stack(masks)


def write_sketch(path, frames=(0, 2, 4), width=320, height=240, strokes=3, source=""):
    """A hand-made sketch.json: stroke k of frame f is a curve shifted by f pixels."""
    doc = {"format": "dynasketch.sketch", "version": 1, "width": width, "height": height, "fps": 24.0,
           "source": {"path": source, "frames": [frames[0], frames[-1] + 1, 2]}, "settings": {},
           "complete": True,
           "frames": [{"index": f, "strokes": [
               {"id": k, "points": [[40 + f, 40 + 60 * k], [100 + f, 20 + 60 * k],
                                    [160 + f, 70 + 60 * k], [260 + f, 50 + 60 * k]],
                "width": 3.0, "opacity": 1.0} for k in range(strokes)]} for f in frames]}
    with open(path, "w") as fh:
        json.dump(doc, fh)
    return doc


def shared_clip(name: str) -> str:
    path = os.path.join(SHARED_CLIPS, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} not found in ../shared/clips (development clips are optional)")
    return path
