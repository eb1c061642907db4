"""The preview video: input and sketch side by side, drawn with Pillow, encoded with PyAV."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from . import bezier


def draw_sketch(strokes: list[dict], width: int, height: int, scale: float) -> Image.Image:
    """Render contract strokes (source pixels) on white at ``scale`` with Pillow."""
    import torch

    image = Image.new("RGB", (max(1, round(width * scale)), max(1, round(height * scale))), "white")
    if not strokes:
        return image
    draw = ImageDraw.Draw(image)
    t = torch.linspace(0, 1, 24, dtype=torch.float64)
    # strokes of any number of cubics (one the artist drew has its own, engine/revisions/)
    curves = [bezier.evaluate(torch.tensor(s["points"], dtype=torch.float64) * scale, t).numpy() for s in strokes]
    for stroke, curve in zip(strokes, curves):
        line = max(1, round(stroke["width"] * scale))
        shade = int(round(255 * (1.0 - stroke["opacity"])))
        draw.line([tuple(p) for p in curve], fill=(shade, shade, shade), width=line, joint="curve")
    return image


def write_preview(path: str, source, frame_range, frames: list[dict], fps: float,
                  height: int = 360, should_stop=lambda: False) -> str | None:
    """Encode ``path`` (mp4): each frame of ``frames`` beside its source frame.

    Returns None if ``should_stop()`` turns true meanwhile; a stop or an error leaves no
    partial file.
    """
    import av

    info = source.info
    scale = height / info.height
    w = max(2, round(info.width * scale) // 2 * 2)
    by_index = {f["index"]: f["strokes"] for f in frames}
    tmp = path + ".part.mp4"
    try:
        with av.open(tmp, "w") as out:
            stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                                    rate=max(1, round(fps)))
            stream.width, stream.height, stream.pix_fmt = 2 * w, height, "yuv420p"
            for index, rgb, _ in source.frames(frame_range):
                if index not in by_index or should_stop():
                    break
                left = Image.fromarray(rgb).resize((w, height), Image.BILINEAR)
                right = draw_sketch(by_index[index], info.width, info.height, scale).resize((w, height))
                both = np.concatenate([np.asarray(left), np.asarray(right)], 1)
                for packet in stream.encode(av.VideoFrame.from_ndarray(both, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        if should_stop():
            return None
        os.replace(tmp, path)
        return path
    finally:                            # a stop or a failure (a full disk) leaves no partial file
        if os.path.exists(tmp):
            os.unlink(tmp)
