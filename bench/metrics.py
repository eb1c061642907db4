"""Quality measures of a finished sketch (``sketch.json``) against its clip.

* flicker: the previous frame's rendered sketch warped by the optical flow of the input
  frames, compared with the current one: mean absolute ink difference over pixels the flow
  says are not occluded (forward-backward consistent). Lower is steadier.
* jitter: mean norm of the second difference over time of every control point (source px).
* ink on subject: share of the sketch's ink inside the mask dilated by 2% of the diagonal.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import torch

from engine.canvas import Letterbox
from engine.masking import MaskFileMasker
from engine.rasterizer import SplatRasterizer
from engine.video import FrameRange, open_video


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def control_points(sketch: dict) -> np.ndarray:
    """(T, N, P, 2) source pixels."""
    return np.array([[s["points"] for s in f["strokes"]] for f in sketch["frames"]], np.float64)


def render(sketch: dict, size: int) -> np.ndarray:
    """Ink of every frame on a ``size`` canvas, (T, size, size) in [0, 1]."""
    box = Letterbox(sketch["width"], sketch["height"], size)
    pts = torch.from_numpy(box.to_canvas(control_points(sketch))).float()
    width = torch.tensor([[s["width"] * box.scale for s in f["strokes"]] for f in sketch["frames"]])
    ink = SplatRasterizer()(pts, width, torch.ones_like(width), size)
    return ink[:, 0].numpy()


def jitter(sketch: dict) -> float:
    p = control_points(sketch)
    if len(p) < 3:
        return 0.0
    return float(np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean())


def sketch_source(sketch: dict):
    """The clip a sketch was made from, as the engine read it."""
    return open_video(sketch["source"]["path"], start_number=sketch["source"].get("start_number"))


def flicker(sketch: dict, size: int = 224) -> float:
    """Flow-warped ink difference between consecutive sketch frames (see module docstring)."""
    ink = render(sketch, size)
    source = sketch_source(sketch)
    box = Letterbox(sketch["width"], sketch["height"], size)
    grey = [cv2.cvtColor(box.fit(rgb), cv2.COLOR_RGB2GRAY)
            for _, rgb, _ in source.frames(FrameRange(*sketch["source"]["frames"]))]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    diffs = []
    for t in range(1, len(ink)):
        back = dis.calc(grey[t], grey[t - 1], None)        # where pixel of t was in t-1
        fwd = dis.calc(grey[t - 1], grey[t], None)
        mx, my = xx + back[..., 0], yy + back[..., 1]
        warped = cv2.remap(ink[t - 1].astype(np.float32), mx, my, cv2.INTER_LINEAR, borderValue=0)
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR)
        consistent = np.linalg.norm(back + fwd_at, axis=-1) < 1.0
        inside = (mx >= 0) & (my >= 0) & (mx <= size - 1) & (my <= size - 1)
        keep = consistent & inside
        if keep.any():
            diffs.append(float(np.abs(warped - ink[t])[keep].mean()))
    return float(np.mean(diffs)) if diffs else 0.0


def ink_on_subject(sketch: dict, mask_path: str, size: int = 224) -> float:
    ink = render(sketch, size)
    info = sketch_source(sketch).info
    frange = FrameRange(*sketch["source"]["frames"])
    masker = MaskFileMasker(mask_path, info, frange)
    box = Letterbox(sketch["width"], sketch["height"], size)
    _, _, w, h = box.placement
    radius = max(1, round(0.02 * np.hypot(w, h)))                  # 2% of the frame's diagonal
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    on, total = 0.0, 0.0
    for t, index in enumerate(frange.indices()):
        if t >= len(ink):
            break
        mask = masker(index, None, None)
        mask = cv2.dilate(box.fit(mask, fill=0), kernel) > 0.5
        on += float(ink[t][mask].sum())
        total += float(ink[t].sum())
    return on / max(total, 1e-9)
