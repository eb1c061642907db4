"""Line weight: a width for each on-curve point of each stroke, at export.

The optimiser draws every stroke with one width; an artist's line is thick on strong, dark
and silhouette edges, thin on soft inner lines, and tapered at both ends. ``LineWeights``
adds that after the optimiser, when a frame's strokes are written (``pipeline.finish``):

1. ``split`` cuts each stroke into ``PIECES`` cubic segments per segment it had, by de
   Casteljau (the same curve), so that it has on-curve points in its middle to be thick at.
2. ``strength`` measures, along each stroke on the frame's canvas image, how strong the line
   under it is: the image's edge strength (Sobel), its darkness, and the subject mask's
   outline (the silhouette). Each on-curve point takes the mean over the piece around it.
3. The width of point ``j`` is ``base * (THIN + (THICK - THIN) * strength) * taper(u_j)``,
   ``u`` the arc-length position along the stroke: thin at both ends, full in the middle.
4. Over time a stroke's strengths follow the footage through an exponential average per
   stroke id and point (``STEADY``), so widths move with the stroke and do not flicker.

The widths are derived, not optimised (docs/STYLES.md says why): they read what the
footage shows under the stroke, cost about a millisecond a frame, and do not change where
the optimiser puts strokes.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

PIECES = 4          # segments each cubic becomes: 5 on-curve points for today's single cubics
THIN, THICK = 0.55, 1.6   # width factors of the weakest and strongest lines
TAPER_END = 0.3     # width at the ends, of the middle's
STEADY = 0.35       # how far a stroke's strength moves toward the new frame's, per frame
JUMP = 0.08         # a stroke moved by more than this share of the canvas starts afresh
SAMPLES = 8         # strength samples per piece


def blossom(seg: np.ndarray, u1, u2, u3) -> np.ndarray:
    """The cubic's polar form at ``(u1, u2, u3)`` (de Casteljau with a parameter per level).
    ``seg`` ``(..., 4, 2)``; the ``u`` broadcast against ``seg[..., 0, 0]``."""
    def lerp(a, b, u):
        u = np.asarray(u, dtype=seg.dtype)[..., None]
        return a + (b - a) * u

    p = [seg[..., i, :] for i in range(4)]
    q = [lerp(p[i], p[i + 1], u1) for i in range(3)]
    r = [lerp(q[i], q[i + 1], u2) for i in range(2)]
    return lerp(r[0], r[1], u3)


def split(control: np.ndarray, pieces: int = PIECES) -> np.ndarray:
    """``(N, 3S+1, 2)`` control points -> ``(N, 3*S*pieces+1, 2)``: each segment cut at
    ``1/pieces, 2/pieces, ...`` by de Casteljau, the same curve."""
    n, p, _ = control.shape
    s = (p - 1) // 3
    index = np.arange(s)[:, None] * 3 + np.arange(4)[None, :]
    seg = control[:, index][:, :, None]                              # (N, S, 1, 4, 2)
    a = np.arange(pieces) / pieces                                   # piece starts
    b = a + 1.0 / pieces
    cps = np.stack([blossom(seg, a, a, a), blossom(seg, a, a, b),
                    blossom(seg, a, b, b)], axis=-2)                # (N, S, pieces, 3, 2)
    out = cps.reshape(n, s * pieces * 3, 2)
    return np.concatenate([out, control[:, -1:]], axis=1)


def joined(control: np.ndarray, pieces: int = PIECES) -> np.ndarray:
    """``split``'s inverse: ``(N, 3*S*pieces+1, 2)`` -> the ``(N, 3S+1, 2)`` curves they were cut
    from (each segment's inner control points from its first and last piece)."""
    control = np.asarray(control, dtype=np.float64)
    s = (control.shape[1] - 1) // (3 * pieces)
    base = np.arange(s) * 3 * pieces
    p0, q1 = control[:, base], control[:, base + 1]
    p3, r2 = control[:, base + 3 * pieces], control[:, base + 3 * pieces - 1]
    inner = np.stack([p0 + pieces * (q1 - p0), p3 + pieces * (r2 - p3), p3], axis=2)   # (N, S, 3, 2)
    return np.concatenate([control[:, :1], inner.reshape(len(control), 3 * s, 2)], axis=1)


def sample(control: np.ndarray, per_segment: int = SAMPLES) -> np.ndarray:
    """Points along each stroke ``(N, S*per_segment+1, 2)``, on-curve point ``j`` at
    ``j*per_segment``."""
    n, p, _ = control.shape
    s = (p - 1) // 3
    index = np.arange(s)[:, None] * 3 + np.arange(4)[None, :]
    seg = control[:, index]                                          # (N, S, 4, 2)
    t = np.arange(per_segment) / per_segment
    u = 1.0 - t
    basis = np.stack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], -1)   # (K, 4)
    pts = np.einsum("kc,nscd->nskd", basis, seg).reshape(n, s * per_segment, 2)
    return np.concatenate([pts, control[:, -1:]], axis=1)


def on_curve_positions(control: np.ndarray) -> np.ndarray:
    """Each on-curve point's arc-length position along its stroke, 0 to 1 ``(N, S+1)``."""
    pts = sample(control)
    step = np.linalg.norm(np.diff(pts, axis=1), axis=-1)
    run = np.concatenate([np.zeros((len(pts), 1)), np.cumsum(step, axis=1)], axis=1)
    at = run[:, ::SAMPLES]
    return at / np.maximum(at[:, -1:], 1e-9)


def taper(u: np.ndarray) -> np.ndarray:
    """Width factor at arc-length positions ``u``: ``TAPER_END`` at the ends, 1 in the middle."""
    return TAPER_END + (1.0 - TAPER_END) * np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** 0.6


def line_maps(rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """How strong a line each canvas pixel lies on, 0 to 1 ``(C, C)``: edges, darkness and
    (with the subject's mask) its outline."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gray = cv2.GaussianBlur(gray, (0, 0), 1.0)
    edge = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    edge = cv2.GaussianBlur(edge, (0, 0), 1.5)
    strong = float(np.percentile(edge[::3, ::3], 98))                # of every 9th pixel: as good, 6x quicker
    edge = np.clip(edge / max(strong, 1e-3), 0.0, 1.0)
    dark = 1.0 - cv2.erode(gray, np.ones((5, 5), np.uint8))          # the darkest nearby
    strength = 0.7 * edge + 0.3 * dark
    if mask is not None and mask.any() and not mask.all():
        outline = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)
        outline = np.clip(4.0 * outline * (1.0 - outline), 0.0, 1.0)  # 1 on the mask's edge
        strength = np.maximum(strength, outline)
    return np.clip(strength, 0.0, 1.0)


def strength(control: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Each on-curve point's line strength ``(N, S+1)``: the mean of ``maps`` over the piece
    of stroke around it (half a segment to each side)."""
    pts = sample(control)                                            # (N, M, 2), M = S*K+1
    h, w = maps.shape
    xs = np.clip(np.round(pts[..., 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(pts[..., 1]).astype(int), 0, h - 1)
    values = maps[ys, xs]                                            # (N, M)
    run = np.concatenate([np.zeros((len(values), 1)), np.cumsum(values, axis=1)], axis=1)
    m = values.shape[1]
    centre = np.arange(0, m, SAMPLES)
    lo = np.clip(centre - SAMPLES // 2, 0, m)
    hi = np.clip(centre + SAMPLES // 2 + 1, 0, m)
    return (run[:, hi] - run[:, lo]) / (hi - lo)


class LineWeights:
    """Widths for a clip's frames, in order; remembers each stroke's strengths for the next."""

    def __init__(self, pieces: int = PIECES):
        self.pieces = pieces
        self.previous: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # id -> (strength, on-curve points)

    def resume_from(self, strokes: list[dict]) -> None:
        """Carry on from a frame already written (a resumed run): its widths give the strengths."""
        for s in strokes:
            if "widths" not in s:
                continue
            pts = np.asarray(s["points"], dtype=np.float64)[None]
            factor = np.asarray(s["widths"]) / max(s["width"], 1e-9) / taper(on_curve_positions(pts)[0])
            self.previous[s["id"]] = ((factor - THIN) / (THICK - THIN), None)

    def weigh(self, control: np.ndarray, rgb: np.ndarray, mask: np.ndarray | None,
              base: float) -> tuple[np.ndarray, np.ndarray]:
        """A frame's strokes ``(N, 3S+1, 2)`` on its canvas image ``rgb`` ``(C, C, 3)`` (and the
        subject's ``mask`` ``(C, C)``, or None) -> the split strokes ``(N, 3*S*pieces+1, 2)``
        and their widths ``(N, S*pieces+1)``, in the units of ``base`` (the stroke's one width)."""
        control = split(np.asarray(control, dtype=np.float64), self.pieces)
        now = strength(control, line_maps(rgb, mask))
        knots = control[:, ::3]
        reach = JUMP * max(rgb.shape[:2])
        for i in range(len(control)):
            before, where = self.previous.get(i, (None, None))
            if before is None or before.shape != now[i].shape:
                continue
            if where is not None and np.linalg.norm(knots[i] - where, axis=-1).mean() > reach:
                continue                                             # a re-seeded stroke
            now[i] = before + STEADY * (now[i] - before)
        self.previous = {i: (now[i].copy(), knots[i].copy()) for i in range(len(control))}
        widths = base * (THIN + (THICK - THIN) * now) * taper(on_curve_positions(control))
        return control, widths
