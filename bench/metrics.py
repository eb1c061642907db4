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
from engine.lines.extract import line_direction
from engine.masks.files import MaskFileMasker
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


def flicker(sketch: dict, size: int = 224, ink: np.ndarray | None = None) -> float:
    """Flow-warped ink difference between consecutive sketch frames (see module docstring);
    ``ink`` ``(T, size, size)``: other ink on the sketch's frames (``outline_ink``) instead."""
    ink = render(sketch, size) if ink is None else ink
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


def outline_ink(sketch: dict, mask_path: str, size: int = 224) -> np.ndarray:
    """The mask's outline drawn as ink ``(T, size, size)`` on the sketch's frames, as wide as
    its strokes: a drawing that lies on the subject on every frame by construction, whose
    ``flicker`` is what the flow's own errors give thin lines (the measure's floor)."""
    info = sketch_source(sketch).info
    frange = FrameRange(*sketch["source"]["frames"])
    masker = MaskFileMasker(mask_path, info, frange)
    box = Letterbox(sketch["width"], sketch["height"], size)
    width = float(np.mean([s["width"] for s in sketch["frames"][0]["strokes"]])) * box.scale
    out = []
    for index in frange.indices()[:len(sketch["frames"])]:
        mask = (box.fit(masker(index, None, None), fill=0) > 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        ink = np.zeros((size, size), np.float32)
        cv2.drawContours(ink, contours, -1, 1.0, max(1, round(width)), cv2.LINE_AA)
        out.append(ink)
    return np.array(out)


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


# -- line quality (issue: sketches that read as their subject) -----------------------------
# Rendered at 512 px wide; tolerance 3% of the subject's bounding-box diagonal, >= 1.5 px.
WIDE = 512


def polylines(sketch: dict, scale: float, per_segment: int = 24) -> list[list[np.ndarray]]:
    """Every frame's strokes as polylines ``(K, 2)`` in source px times ``scale``."""
    t = np.linspace(0.0, 1.0, per_segment + 1)
    s = 1 - t
    basis = np.stack([s ** 3, 3 * s * s * t, 3 * s * t * t, t ** 3], 1)          # (K, 4)
    out = []
    for frame in sketch["frames"]:
        strokes = []
        for stroke in frame["strokes"]:
            p = np.asarray(stroke["points"], np.float64) * scale
            pieces = [basis @ p[k:k + 4] for k in range(0, len(p) - 1, 3)]
            strokes.append(np.concatenate([pieces[0]] + [q[1:] for q in pieces[1:]]))
        out.append(strokes)
    return out


def reference_lines(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The long lines a stroke may lie on (mask boundary; Canny edges of the blurred frame
    inside the subject in connected runs of >= 10% of its diagonal) and the tolerance."""
    ys, xs = np.nonzero(mask)
    diagonal = float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)) if len(xs) else 0.0
    lines = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(lines, contours, -1, 1, 1)
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (0, 0), 2.0)
    edges = (cv2.Canny(grey, 30, 80) > 0) & mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= 0.1 * diagonal
    lines |= keep[labels].astype(np.uint8)
    return lines.astype(bool), max(1.5, 0.03 * diagonal)


def aligned_share(strokes: list[np.ndarray], lines: np.ndarray, tolerance: float) -> tuple[float, float]:
    """(aligned length, total length) of the strokes: within ``tolerance`` of a line and
    within 30 degrees of its direction."""
    if not lines.any():
        return 0.0, sum(float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in strokes)
    distance = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, 5)
    direction = line_direction(lines, max(1.0, tolerance / 2))
    h, w = lines.shape
    aligned = total = 0.0
    for s in strokes:
        seg = np.diff(s, axis=0)
        length = np.linalg.norm(seg, axis=1)
        mid = (s[1:] + s[:-1]) / 2
        x = np.clip(mid[:, 0].astype(int), 0, w - 1)
        y = np.clip(mid[:, 1].astype(int), 0, h - 1)
        angle = np.arctan2(seg[:, 1], seg[:, 0])
        diff = np.abs((angle - direction[y, x] + np.pi / 2) % np.pi - np.pi / 2)
        ok = (distance[y, x] <= tolerance) & (diff <= np.radians(30))
        aligned += float(length[ok].sum())
        total += float(length.sum())
    return aligned, total


def crossings(strokes: list[np.ndarray]) -> int:
    """Proper intersections between stroke polylines, and of a stroke with itself
    (adjacent segments excluded)."""
    a = np.concatenate([s[:-1] for s in strokes])
    b = np.concatenate([s[1:] for s in strokes])
    owner = np.concatenate([np.full(len(s) - 1, k) for k, s in enumerate(strokes)])
    order = np.concatenate([np.arange(len(s) - 1) for s in strokes])

    def side(p, q, r):                      # sign of the turn p -> q -> r, for all pairs
        return np.sign((q[:, None, 0] - p[:, None, 0]) * (r[None, :, 1] - p[:, None, 1])
                       - (q[:, None, 1] - p[:, None, 1]) * (r[None, :, 0] - p[:, None, 0]))

    d1, d2 = side(a, b, a), side(a, b, b)          # segment j's ends against segment i
    proper = (d1 * d2 < 0) & (d1.T * d2.T < 0)
    same = owner[:, None] == owner[None, :]
    near = same & (np.abs(order[:, None] - order[None, :]) <= 1)
    return int(np.triu(proper & ~near, 1).sum())


def line_quality(sketch: dict, mask_path: str) -> dict:
    """Aligned ink, crossings per stroke, silhouette recall and length drift (module notes)."""
    source = sketch_source(sketch)
    frange = FrameRange(*sketch["source"]["frames"])
    masker = MaskFileMasker(mask_path, source.info, frange)
    scale = WIDE / sketch["width"]
    size = (WIDE, max(1, round(sketch["height"] * scale)))
    lines_of_frames = polylines(sketch, scale)
    aligned = total = recall_hit = recall_all = 0.0
    crossed, lengths, diagonals = [], [], []
    for t, (index, rgb, _) in enumerate(source.frames(frange)):
        if t >= len(lines_of_frames):
            break
        strokes = lines_of_frames[t]
        mask = cv2.resize(masker(index, rgb, None), size, interpolation=cv2.INTER_LINEAR) > 0.5
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        lines, tolerance = reference_lines(rgb, mask)
        a, b = aligned_share(strokes, lines, tolerance)
        aligned, total = aligned + a, total + b
        crossed.append(crossings(strokes) / len(strokes))
        ink = np.zeros(mask.shape, np.uint8)
        cv2.polylines(ink, [np.round(s).astype(np.int32) for s in strokes], False, 1, 1)
        near_ink = cv2.distanceTransform((1 - ink).astype(np.uint8), cv2.DIST_L2, 5) <= tolerance
        boundary = np.zeros(mask.shape, np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(boundary, contours, -1, 1, 1)
        boundary[[0, -1], :] = boundary[:, [0, -1]] = 0            # the frame's edge is no outline
        recall_hit += float(near_ink[boundary > 0].sum())
        recall_all += float(boundary.sum())
        lengths.append(sum(float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in strokes))
        diagonals.append(tolerance / 0.03)
    return {"aligned_ink": aligned / max(total, 1e-9),
            "crossings_per_stroke": float(np.mean(crossed)),
            "silhouette_recall": recall_hit / max(recall_all, 1.0),
            "length_drift": lengths[-1] / lengths[0],
            "length_drift_subject": (lengths[-1] / diagonals[-1]) / (lengths[0] / diagonals[0])}
