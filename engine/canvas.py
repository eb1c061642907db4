"""The square working canvas: the source frame fitted with padding, or a square window of
it around the subject (``subject_window``, kept steady over time by ``SubjectFraming``).

``Letterbox`` maps source pixels (x right, y down) to canvas pixels and back, and resizes
frames and masks onto the canvas with OpenCV. Source and canvas coordinates are continuous,
with a pixel's centre at +0.5, as OpenCV resizes.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    width: int          # source frame size
    height: int
    size: int           # canvas side, pixels
    # The square of the source shown on the canvas, ``(x0, y0, side)`` in whole source pixels
    # (it may reach past the frame: that is padding); None: the whole frame, centred.
    window: tuple[int, int, int] | None = None

    @property
    def placement(self) -> tuple[int, int, int, int]:
        """Where the frame sits on the canvas: ``x0, y0, w, h`` in canvas pixels (with a
        window, it may reach past the canvas)."""
        if self.window is not None:
            x0, y0, side = self.window
            k = self.size / side
            return round(-x0 * k), round(-y0 * k), round(self.width * k), round(self.height * k)
        scale = self.size / max(self.width, self.height)
        w = max(1, round(self.width * scale))
        h = max(1, round(self.height * scale))
        return (self.size - w) // 2, (self.size - h) // 2, w, h

    @property
    def scale(self) -> float:
        """Canvas pixels per source pixel (horizontal; vertical differs by rounding only)."""
        if self.window is not None:
            return self.size / self.window[2]
        return self.placement[2] / self.width

    def to_canvas(self, points):
        """Source pixels -> canvas pixels; numpy arrays or tensors ``(..., 2)``."""
        out = points * 1.0
        if self.window is not None:
            x0, y0, side = self.window
            out[..., 0] = (points[..., 0] - x0) * (self.size / side)
            out[..., 1] = (points[..., 1] - y0) * (self.size / side)
            return out
        x0, y0, w, h = self.placement
        out[..., 0] = points[..., 0] * (w / self.width) + x0
        out[..., 1] = points[..., 1] * (h / self.height) + y0
        return out

    def to_source(self, points):
        """Canvas pixels -> source pixels; numpy arrays or tensors ``(..., 2)``."""
        out = points * 1.0
        if self.window is not None:
            x0, y0, side = self.window
            out[..., 0] = points[..., 0] * (side / self.size) + x0
            out[..., 1] = points[..., 1] * (side / self.size) + y0
            return out
        x0, y0, w, h = self.placement
        out[..., 0] = (points[..., 0] - x0) * (self.width / w)
        out[..., 1] = (points[..., 1] - y0) * (self.height / h)
        return out

    def fit(self, image: np.ndarray, fill: int = 255) -> np.ndarray:
        """Resize ``image`` (H, W[, C]) onto the square canvas, padding with ``fill``."""
        if self.window is not None:
            return self._fit_window(image, fill)
        x0, y0, w, h = self.placement
        shrink = w < self.width
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out = np.full((self.size, self.size) + image.shape[2:], fill, dtype=image.dtype)
        out[y0:y0 + h, x0:x0 + w] = small.reshape((h, w) + image.shape[2:])
        return out

    def _fit_window(self, image: np.ndarray, fill: int) -> np.ndarray:
        """The window's square of ``image`` (padded with ``fill`` past the frame), resized."""
        x0, y0, side = self.window
        h, w = image.shape[:2]
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
        if cx1 <= cx0 or cy1 <= cy0:
            return np.full((self.size, self.size) + image.shape[2:], fill, dtype=image.dtype)
        square = cv2.copyMakeBorder(image[cy0:cy1, cx0:cx1], cy0 - y0, y0 + side - cy1, cx0 - x0,
                                    x0 + side - cx1, cv2.BORDER_CONSTANT, value=(fill,) * 4)
        shrink = side > self.size
        out = cv2.resize(square, (self.size, self.size),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return out.reshape((self.size, self.size) + image.shape[2:])

    def resized(self, size: int) -> "Letterbox":
        """The same frame (and window) on a canvas of another size."""
        return Letterbox(self.width, self.height, size, self.window)

    def framed(self, window: tuple[int, int, int] | None) -> "Letterbox":
        """The same frame and canvas showing another window."""
        return Letterbox(self.width, self.height, self.size, window)

    def frame_area(self) -> tuple[int, int, int, int]:
        """The canvas pixels that show the frame, ``x0, y0, x1, y1`` (exclusive), on the canvas."""
        x0, y0, w, h = self.placement
        return max(0, x0), max(0, y0), min(self.size, x0 + w), min(self.size, y0 + h)

    def inside(self) -> np.ndarray:
        """Boolean (size, size) map of the canvas pixels that show the frame (not padding)."""
        x0, y0, x1, y1 = self.frame_area()
        out = np.zeros((self.size, self.size), bool)
        out[y0:y1, x0:x1] = True
        return out

    def faded(self, width: float = 16.0) -> np.ndarray:
        """Float32 (size, size) map of the frame: 1 inside, 0 on the padding, falling to 0 over
        ``width`` canvas pixels towards the padding (6 px still left a line where dark footage met
        the paper). Used as the "subject" of a frame with no
        mask, it fades the picture into the paper, so the frame's edge against the padding is
        no line to draw (a hard cut there made the strokes trace the letterbox)."""
        inside = self.inside()
        if inside.all():
            return inside.astype(np.float32)
        framed = np.pad(inside, 1, constant_values=False)            # the padding is the edge
        framed[0, 1:-1], framed[-1, 1:-1] = inside[0], inside[-1]    # the canvas border is not
        framed[1:-1, 0], framed[1:-1, -1] = inside[:, 0], inside[:, -1]
        distance = cv2.distanceTransform(framed.astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        return np.clip((distance - 0.5) / width, 0.0, 1.0).astype(np.float32)


THIN_COVERAGE = 0.15        # a canvas pixel a thin part covers this much of is the subject's


def thin_parts(region: np.ndarray) -> np.ndarray:
    """The pixels ``(H, W)`` bool of ``region`` (bool or 0/1) in parts under three pixels wide:
    what an opening by a 3x3 square takes away."""
    region = region.astype(np.uint8)
    return (region & (1 - cv2.morphologyEx(region, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))).astype(bool)


def subject_pixels(coverage: np.ndarray) -> np.ndarray:
    """The subject's canvas pixels ``(C, C)`` float32 in {0, 1} from the mask resized onto the
    canvas (``coverage``: how much of each canvas pixel the subject covers, 0..1). Over half
    covered is the subject; so is a thin part (a string, a pole, a paraglider's lines: under
    three canvas pixels wide, which shrinking leaves a fraction of a pixel wide) where it
    covers ``THIN_COVERAGE``, so that it stays one line rather than a row of dashes."""
    coverage = np.asarray(coverage, np.float32)
    return ((coverage >= 0.5) | thin_parts(coverage > THIN_COVERAGE)).astype(np.float32)


def subject_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box ``x0, y0, x1, y1`` (exclusive) of a mask ``(H, W)``; None if empty."""
    ys, xs = np.nonzero(mask > 0.5)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def subject_window(mask: np.ndarray, margin: float = 0.15, least: float = 0.1) -> tuple[float, float, float] | None:
    """The square around a subject mask ``(H, W)`` (source pixels): ``(cx, cy, side)``, the
    bounding box's centre and its longer side plus ``margin`` of it on each side, at least
    ``least`` of the frame's longer side and at most the whole frame letterboxed; None for
    an empty mask."""
    bounds = subject_bounds(mask)
    if bounds is None:
        return None
    h, w = mask.shape[:2]
    bx0, by0, bx1, by1 = bounds
    side = max(bx1 - bx0, by1 - by0) * (1 + 2 * margin)
    side = float(np.clip(side, least * max(w, h), max(w, h)))
    return (bx0 + bx1) / 2.0, (by0 + by1) / 2.0, side


class SubjectFraming:
    """The canvas window of each frame in turn, following the subject's mask and smoothed
    over time so the drawing does not shake: the centre and side move ``pull`` of the way
    towards the subject's square each frame, then grow or shift just enough that the
    subject's own bounding box stays in view. Frames without a mask show the whole frame;
    an empty mask keeps the window it had. ``state`` / ``from_state`` let a resumed run
    continue with the same windows."""

    def __init__(self, width: int, height: int, size: int, follow: bool = True, pull: float = 0.35,
                 state: tuple[float, float, float] | None = None):
        self.base = Letterbox(width, height, size)
        self.follow = follow                 # False: always the whole frame (--framing frame)
        self.pull = pull
        self.state = state                   # (cx, cy, side) in source pixels, smoothed

    def __call__(self, mask: np.ndarray | None) -> Letterbox:
        if mask is None or not self.follow:
            return self.base
        wanted, bounds = subject_window(mask), subject_bounds(mask)
        if wanted is None:
            return self.base if self.state is None else self._box()
        if self.state is None:
            self.state = wanted
        else:
            cx, cy, side = (a + self.pull * (b - a) for a, b in zip(self.state, wanted))
            # the subject's box (the wanted square without its margin) stays in view
            need = min(max(bounds[2] - bounds[0], bounds[3] - bounds[1]) * 0.52, wanted[2] / 2.0)
            half = max(side / 2.0, need)
            cx = float(np.clip(cx, wanted[0] + need - half, wanted[0] - need + half))
            cy = float(np.clip(cy, wanted[1] + need - half, wanted[1] - need + half))
            self.state = (cx, cy, 2.0 * half)
        return self._box()

    def _box(self) -> Letterbox:
        cx, cy, side = self.state
        whole = max(1, round(side))
        return self.base.framed((round(cx - whole / 2.0), round(cy - whole / 2.0), whole))
