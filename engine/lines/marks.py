"""Inner marks: the compact, high-contrast features a person draws inside a subject (eyes, a
nose, a mouth, wheels, windows, a logo), found without weights.

A mark is a blob that stands out from its surroundings: the frame, lightly blurred, minus its
local background (a wide blur, 6% of the subject's diagonal); where that difference is darker
or brighter than ``CONTRAST`` grey levels (and than twice its spread inside the subject), its
connected regions inside the subject, away from the silhouette, are candidates. A candidate is
a mark when it is compact (``MIN_SOLIDITY`` of its convex hull, at most ``MAX_ASPECT`` long
for its width) and of a drawable size (a radius between ``MIN_RADIUS`` and ``MAX_RADIUS`` of
the subject's diagonal). Marks are ranked by contrast times the square root of their area, and
each is drawn as one closed cubic around its outline (``loop_cubic``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CONTRAST = 18.0          # grey levels a mark differs from its surroundings, at least
MIN_RADIUS = 0.012       # x the subject's diagonal: smaller is noise
MAX_RADIUS = 0.09        # ... larger is a region (a shirt, a wing), not a mark
MIN_SOLIDITY = 0.7
MAX_ASPECT = 3.0
BACKGROUND = 0.06        # the local background's blur, x the subject's diagonal


@dataclass
class Mark:
    outline: np.ndarray          # (K, 2) x, y at pixel centres, closed (first point repeated)
    salience: float              # contrast x sqrt(area)


def find_marks(grey: np.ndarray, inner: np.ndarray, diagonal: float, limit: int = 12) -> list[Mark]:
    """The marks inside ``inner`` (``(C, C)`` bool: the subject away from its silhouette) of the
    grey canvas frame ``grey`` (``(C, C)`` uint8 or float), most salient first, at most ``limit``."""
    if diagonal <= 0 or not inner.any():
        return []
    frame = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 0.8)
    background = cv2.GaussianBlur(frame, (0, 0), max(1.0, BACKGROUND * diagonal))
    difference = frame - background
    spread = float(difference[inner].std())
    threshold = max(CONTRAST, 2.0 * spread)
    r_min, r_max = MIN_RADIUS * diagonal, MAX_RADIUS * diagonal
    a_min, a_max = max(4.0, np.pi * r_min ** 2), np.pi * r_max ** 2
    marks = []
    for region in (difference < -threshold, difference > threshold):        # dark, then bright
        region &= inner
        count, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
        for k in range(1, count):
            area = float(stats[k, cv2.CC_STAT_AREA])
            if not a_min <= area <= a_max:
                continue
            piece = (labels == k).astype(np.uint8)
            contours, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            contour = max(contours, key=len)[:, 0, :]
            hull = cv2.contourArea(cv2.convexHull(contour))
            if hull <= 0 or area / max(hull, area) < MIN_SOLIDITY or len(contour) < 4:
                continue
            (_, _), (w, h), _ = cv2.minAreaRect(contour)
            if max(w, h) > MAX_ASPECT * max(min(w, h), 1.0):
                continue
            contrast = float(np.abs(difference[labels == k]).mean())
            outline = np.vstack([contour, contour[:1]]).astype(np.float64) + 0.5
            marks.append(Mark(outline, contrast * np.sqrt(area)))
    return sorted(marks, key=lambda m: -m.salience)[:limit]


def loop_cubic(outline: np.ndarray) -> np.ndarray:
    """One cubic ``(4, 2)`` that starts and ends at the outline's top point and goes round it:
    the inner control points by least squares over the outline's points (chord-length
    parameters), so a mark is one closed stroke."""
    pts = outline[:-1] if np.allclose(outline[0], outline[-1]) and len(outline) > 2 else outline
    top = int(np.argmin(pts[:, 1] * 1e3 + pts[:, 0]))
    pts = np.vstack([np.roll(pts, -top, 0), pts[top:top + 1]])
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    u = np.concatenate([[0.0], np.cumsum(steps)]) / max(float(steps.sum()), 1e-9)
    b0, b1, b2, b3 = (1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u ** 2, u ** 3
    start = pts[0]
    rhs = pts - (b0 + b3)[:, None] * start
    design = np.stack([b1, b2], 1)
    inner, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    return np.stack([start, inner[0], inner[1], start])
