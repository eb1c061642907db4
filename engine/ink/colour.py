"""The footage's colour under each stroke, steady over time.

Each stroke's colour on a frame is the median of the canvas pixels along it (the pixels that
show the frame, not the letterbox), moved toward from the stroke's colour on the frame
before by ``STEADY`` per frame, so that a stroke does not flicker as it crosses texture.
Colours are the frame as shown (sRGB, 0 to 1), as the canvas image is.
"""
from __future__ import annotations

import numpy as np

from .weight import JUMP, sample

STEADY = 0.35


def under(control: np.ndarray, rgb: np.ndarray, inside: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The median colour ``(N, 3)`` under each stroke ``(N, 3S+1, 2)`` on ``rgb`` ``(C, C, 3)``,
    and whether any of its points lies on the frame ``(N,)``."""
    pts = sample(control)
    h, w = rgb.shape[:2]
    xs = np.clip(np.round(pts[..., 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(pts[..., 1]).astype(int), 0, h - 1)
    values = rgb[ys, xs].astype(np.float64) / 255.0                   # (N, M, 3)
    seen = np.ones(xs.shape, bool) if inside is None else inside[ys, xs]
    found = seen.any(-1)
    if seen.all():                                                   # the usual case, and quicker
        return np.median(values, axis=1), found
    values = np.where(seen[..., None], values, np.nan)
    colours = np.full((len(control), 3), 0.5)
    if found.any():
        colours[found] = np.nanmedian(values[found], axis=1)
    return colours, found


class StrokeColours:
    """Colours for a clip's frames, in order; remembers each stroke's for the next."""

    def __init__(self):
        self.previous: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}   # id -> (colour, knots)

    def resume_from(self, strokes: list[dict]) -> None:
        for s in strokes:
            if "colour" in s:
                self.previous[s["id"]] = (np.asarray(s["colour"], np.float64), None)

    def colour(self, control: np.ndarray, rgb: np.ndarray, inside: np.ndarray | None) -> np.ndarray:
        """Each stroke's colour ``(N, 3)`` on this frame (canvas control points ``(N, 3S+1, 2)``)."""
        now, found = under(control, rgb, inside)
        knots = control[:, ::3]
        reach = JUMP * max(rgb.shape[:2])
        for i in range(len(control)):
            before, where = self.previous.get(i, (None, None))
            if before is None:
                continue
            if not found[i]:
                now[i] = before                                      # off the frame: as it was
            elif where is None or where.shape != knots[i].shape or \
                    np.linalg.norm(knots[i] - where, axis=-1).mean() <= reach:
                now[i] = before + STEADY * (now[i] - before)
        self.previous = {i: (now[i].copy(), knots[i].copy()) for i in range(len(control))}
        return now
