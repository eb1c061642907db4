"""A procedural sample clip, made here so the project ships no third-party media.

A figure with a swinging arm and legs walks across a soft background; ``write_sample``
encodes it with PyAV, and its mask (white = figure) beside it.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def figure_frame(t: int, frames: int, width: int, height: int) -> tuple[Image.Image, Image.Image]:
    """Frame ``t`` of the sample and its mask."""
    u = t / max(1, frames - 1)
    cx = width * (0.25 + 0.5 * u)
    ground = height * 0.85
    unit = height / 10.0
    swing = math.sin(2 * math.pi * 2 * u) * 0.6
    yy, xx = np.mgrid[0:height, 0:width]
    sky = np.stack([200 + 30 * yy / height, 215 + 20 * xx / width, 235 - 20 * yy / height], -1)
    clouds = 12 * np.sin(xx / 9.0 + 2 * np.sin(yy / 13.0)) * np.cos(yy / 7.0)   # texture to track
    sky = sky + clouds[..., None]
    grass = (yy > ground)
    sky[grass] = np.stack([110 + 25 * ((xx[grass] // 4 + yy[grass] // 3) % 2), 160 + 0 * xx[grass],
                           100 + 0 * xx[grass]], -1)
    image = Image.fromarray(sky.clip(0, 255).astype(np.uint8))
    mask = Image.new("L", (width, height), 0)
    for canvas, ink in ((ImageDraw.Draw(image), None), (ImageDraw.Draw(mask), 255)):
        colour = lambda c: ink if ink is not None else c          # noqa: E731
        hip = (cx, ground - 3.2 * unit)
        neck = (cx, ground - 6.0 * unit)
        for side in (-1, 1):                                     # legs
            foot = (cx + side * swing * 1.6 * unit, ground)
            canvas.line([hip, foot], fill=colour((40, 40, 90)), width=int(unit * 0.6))
        canvas.rounded_rectangle([cx - unit, neck[1], cx + unit, hip[1] + 0.3 * unit],
                                 radius=int(unit * 0.4), fill=colour((200, 60, 50)))
        for k in range(1, 4):                                    # faint shirt stripes to track
            y = neck[1] + k * (hip[1] - neck[1]) / 4
            canvas.line([(cx - unit, y), (cx + unit, y)], fill=colour((214, 84, 62)), width=max(1, int(unit * 0.2)))
        hand = (cx + math.cos(swing + 0.8) * 2.4 * unit, neck[1] + math.sin(swing + 0.8) * 2.4 * unit)
        canvas.line([(cx, neck[1] + 0.4 * unit), hand], fill=colour((205, 150, 110)), width=int(unit * 0.45))
        r = 0.9 * unit
        canvas.ellipse([cx - r, neck[1] - 2 * r, cx + r, neck[1]], fill=colour((205, 150, 110)))
        canvas.arc([cx - r * 0.5, neck[1] - 1.3 * r, cx + r * 0.5, neck[1] - 0.4 * r], 20, 160,
                   fill=colour((60, 30, 30)), width=max(1, int(unit * 0.12)))
    return image, mask


def write_sample(path: str, mask_path: str | None = None, frames: int = 36,
                 width: int = 320, height: int = 240, fps: int = 24) -> None:
    import av

    outputs = [(path, "rgb")] + ([(mask_path, "mask")] if mask_path else [])
    for target, kind in outputs:
        with av.open(target, "w") as container:
            stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                                          rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "12"} if stream.name == "libx264" else {}
            for t in range(frames):
                image, mask = figure_frame(t, frames, width, height)
                data = np.asarray(image if kind == "rgb" else mask.convert("RGB"))
                for packet in stream.encode(av.VideoFrame.from_ndarray(data, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
