"""The subject's lines on the canvas: its silhouette and its strongest long interior lines.

``extract_lines(rgb, mask, frame)`` works on one canvas frame (``(C, C, 3)`` uint8, the
subject mask ``(C, C)`` bool or None, and the canvas pixels that show the frame). It gives
``Lines``: the silhouette as ordered runs of boundary points (the mask's outer contours,
cut where they run along the frame's edge, which is no line of the subject), the interior
lines as one-pixel centrelines (Canny on the blurred frame inside the eroded mask, thinned,
connected runs shorter than ``min_run`` of the subject's diagonal dropped; and the
centrelines of parts under three pixels wide, which the erosion leaves out), the inner marks
(``marks``: eyes, wheels, a logo; with a mask), and the line image they all make, which
the chamfer loss and the re-seeding measure distances to.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..canvas import thin_parts
from .marks import find_marks


@dataclass
class Lines:
    image: np.ndarray                       # (C, C) bool: every line pixel
    silhouette: list[np.ndarray] = field(default_factory=list)   # ordered (K, 2) x, y runs
    interior: np.ndarray | None = None      # (C, C) bool centrelines inside the subject
    strength: np.ndarray | None = None      # (C, C) float32 gradient magnitude, 0..1
    subject: np.ndarray | None = None       # (C, C) bool: the subject (the frame without a mask)
    diagonal: float = 0.0                   # the subject's bounding-box diagonal, canvas px
    marks: list = field(default_factory=list)   # inner marks (``marks.Mark``), most salient first

    @property
    def empty(self) -> bool:
        return not self.image.any()

    def distance(self) -> np.ndarray:
        """``(C, C)`` float32: each pixel's distance to the nearest line pixel (canvas px;
        the canvas's diagonal where there are no lines), computed once."""
        if getattr(self, "_distance", None) is None:
            if self.empty:
                self._distance = np.full(self.image.shape, float(np.hypot(*self.image.shape)), np.float32)
            else:
                self._distance = cv2.distanceTransform((~self.image).astype(np.uint8), cv2.DIST_L2, 5)
        return self._distance

    def direction(self) -> np.ndarray:
        """``(C, C)`` float32: the direction of the lines around each pixel (radians, mod pi),
        smoothed over half the reach of a line (1.5% of the subject's diagonal); made once."""
        if getattr(self, "_direction", None) is None:
            self._direction = line_direction(self.image, max(1.0, 0.015 * self.diagonal))
        return self._direction


def line_direction(lines: np.ndarray, sigma: float) -> np.ndarray:
    """The direction of the lines ``(H, W)`` bool around each pixel (radians, mod pi), from
    the structure tensor of the line image smoothed over ``sigma`` px."""
    f = cv2.GaussianBlur(lines.astype(np.float32), (0, 0), 1.0)
    gx, gy = cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1)
    jxx, jxy, jyy = (cv2.GaussianBlur(a, (0, 0), sigma) for a in (gx * gx, gx * gy, gy * gy))
    return (0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2).astype(np.float32)   # across the gradient


def _diagonal(region: np.ndarray) -> float:
    ys, xs = np.nonzero(region)
    if not len(xs):
        return 0.0
    return float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))


def _stretches(flags: np.ndarray) -> np.ndarray:
    """For each True of ``flags`` the length of the stretch of consecutive Trues it is in (0
    for a False)."""
    out = np.zeros(len(flags), np.int64)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    size = change[1::2] - change[::2]
    out[flags.astype(bool)] = np.repeat(size, size)
    return out


def silhouette_runs(mask: np.ndarray, frame: np.ndarray, min_points: int = 6) -> list[np.ndarray]:
    """The outer contours of ``mask`` as ordered point runs ``(K, 2)`` (x, y at pixel centres),
    longest first, cut where they touch the frame's edge (``frame``: the canvas pixels that
    show the frame) and where they come back over pixels they passed already for
    ``min_points`` or more: round a part one or two pixels wide (a string, a pole) a contour
    runs out along it and back over the same pixels, and that is one line, not two. A contour
    that does neither stays closed (first point repeated)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    # the frame's edge, one pixel in: a mask boundary there is the subject leaving the frame
    edge = frame & ~cv2.erode(frame.astype(np.uint8), np.ones((5, 5), np.uint8), borderValue=0).astype(bool)
    runs = []
    for contour in contours:
        pts = contour[:, 0, :]
        keys = pts[:, 1].astype(np.int64) * mask.shape[1] + pts[:, 0]
        first = np.zeros(len(pts), bool)
        first[np.unique(keys, return_index=True)[1]] = True         # a pixel's first visit
        back = _stretches(~first)
        back[back < min_points] = 0                                  # a one-pixel neck is no line
        keep = (back == 0) & ~edge[pts[:, 1], pts[:, 0]]
        if keep.all():
            runs.append(np.vstack([pts, pts[:1]]).astype(np.float64) + 0.5)
            continue
        # rotate so the contour starts where it is cut, then split into the runs kept
        shift = int(np.argmin(keep))
        pts, keep = np.roll(pts, -shift, 0), np.roll(keep, -shift)
        change = np.flatnonzero(np.diff(keep.astype(np.int8)))
        starts, stops = change[::2] + 1, np.append(change[1::2] + 1, len(pts))[:len(change[::2])]
        runs.extend(pts[a:b].astype(np.float64) + 0.5 for a, b in zip(starts, stops))
    runs = [r for r in runs if len(r) >= min_points]
    return sorted(runs, key=len, reverse=True)


def centrelines(region: np.ndarray, least: float) -> np.ndarray:
    """The one-pixel centrelines ``(C, C)`` bool of ``region`` in connected runs of at least
    ``least`` pixels."""
    from skimage.morphology import skeletonize

    count, labels, stats, _ = cv2.connectedComponentsWithStats(skeletonize(region).astype(np.uint8),
                                                               connectivity=8)
    long_enough = np.zeros(count, bool)
    long_enough[1:] = stats[1:, cv2.CC_STAT_AREA] >= least
    return long_enough[labels]


def thin_lines(subject: np.ndarray, least: float) -> np.ndarray:
    """The centrelines ``(C, C)`` bool of the subject's parts under three pixels wide (a
    paraglider's lines, a string, a pole) in runs of at least ``least`` pixels: lines of the
    subject that the eroded interior leaves out and whose outline, where several meet, is
    only the outermost (the lines between lie on holes of the mask)."""
    return centrelines(thin_parts(subject), least)


def extract_lines(rgb: np.ndarray, mask: np.ndarray | None, frame: np.ndarray,
                  min_run: float = 0.1, sigma: float = 1.5) -> Lines:
    """The lines of one canvas frame; see the module docstring."""
    subject = frame.copy() if mask is None else (mask & frame)
    diagonal = _diagonal(subject)
    image = np.zeros(frame.shape, bool)
    if diagonal == 0:
        return Lines(image, subject=subject)
    runs = silhouette_runs(subject, frame) if mask is not None else []
    for run in runs:
        image[np.clip(run[:, 1].astype(int), 0, frame.shape[0] - 1),
              np.clip(run[:, 0].astype(int), 0, frame.shape[1] - 1)] = True

    plain = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = cv2.GaussianBlur(plain, (0, 0), sigma)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    magnitude = np.hypot(gx, gy)
    # inside the subject, away from its silhouette (that line is drawn from the mask)
    inner = cv2.erode(subject.astype(np.uint8), np.ones((7, 7), np.uint8), borderValue=0).astype(bool)
    values = magnitude[inner]
    interior = np.zeros(frame.shape, bool)
    strength = np.zeros(frame.shape, np.float32)
    if values.size and values.max() > 1e-3:
        high = float(np.percentile(values, 90))
        edges = cv2.Canny(grey, max(1.0, 0.5 * high), max(2.0, high), L2gradient=True) > 0
        interior = centrelines(edges & inner, min_run * diagonal)
        strength = np.clip(magnitude / max(float(values.max()), 1e-6), 0, 1).astype(np.float32)
    if mask is not None:
        interior |= thin_lines(subject, min_run * diagonal)
    marks = find_marks(plain, inner, diagonal) if mask is not None else []
    for mark in marks:               # a mark's outline is a line the strokes are drawn to
        image[mark.outline[:, 1].astype(int), mark.outline[:, 0].astype(int)] = True
    return Lines(image | interior, runs, interior, strength, subject, diagonal, marks)
