"""The letterbox padding and the frame's border are not the subject."""
import json

import numpy as np
import torch

from bench.metrics import control_points
from engine.bezier import evaluate
from engine.canvas import Letterbox
from media import write_video
from test_cli import dynasketch


def dark_widescreen_clip(path: str) -> str:
    """16:9 frames, dark, with a light disc moving across: a strong edge against the white
    padding above and below, where nothing is to be drawn."""
    yy, xx = np.mgrid[0:90, 0:160]
    frames = np.full((8, 90, 160, 3), 50, np.uint8)
    for i, frame in enumerate(frames):
        frame[(xx - 50 - 4 * i) ** 2 + (yy - 45) ** 2 < 18 ** 2] = 210
    return write_video(path, frames)


def share_along_top_and_bottom(sketch: dict, tolerance: float = 2.0) -> float:
    """Share of the points along the strokes within ``tolerance`` source px of the frame's top
    or bottom edge."""
    y = evaluate(torch.from_numpy(control_points(sketch)), 50)[..., 1]
    return float(((y < tolerance) | (y > sketch["height"] - tolerance)).double().mean())


def test_no_stroke_follows_the_letterbox_padding(tmp_path):
    """Without a mask, strokes traced the top and bottom of a 16:9 frame (30% of their points
    lay within 2 px of those edges on this clip); by chance it would be about 4%."""
    clip = dark_widescreen_clip(str(tmp_path / "wide.mp4"))
    out = tmp_path / "out"
    result = dynasketch("sketch", clip, "--out", out, "--mask", "none", "--frames", "0:4", "--preset", "fast",
                        "--strokes", 8, "--seeds", 1, "--progress", "none", "--no-preview")
    assert result.returncode == 0, result.stderr
    assert share_along_top_and_bottom(json.loads((out / "sketch.json").read_text())) < 0.05


def test_the_frame_fades_into_the_padding_and_not_at_the_canvas_border():
    faded = Letterbox(1920, 1080, 224).faded()
    x0, y0, w, h = Letterbox(1920, 1080, 224).placement
    assert (faded[:y0] == 0).all() and (faded[y0 + h:] == 0).all()
    assert faded[y0][112] < 0.2 and faded[y0 + 17][112] == 1.0      # a ramp at the padding
    assert faded[112, 0] == 1.0 and faded[112, -1] == 1.0            # not at the canvas's own edge
    assert (Letterbox(512, 512, 224).faded() == 1).all()
