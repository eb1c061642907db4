"""The square working canvas: a source frame fitted with padding (never cropped).

``Letterbox`` maps source pixels (x right, y down) to canvas pixels and back, and resizes
frames and masks onto the canvas with OpenCV.
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

    @property
    def placement(self) -> tuple[int, int, int, int]:
        """Where the frame sits on the canvas: ``x0, y0, w, h`` in canvas pixels."""
        scale = self.size / max(self.width, self.height)
        w = max(1, round(self.width * scale))
        h = max(1, round(self.height * scale))
        return (self.size - w) // 2, (self.size - h) // 2, w, h

    @property
    def scale(self) -> float:
        """Canvas pixels per source pixel (horizontal; vertical differs by rounding only)."""
        return self.placement[2] / self.width

    def to_canvas(self, points):
        """Source pixels -> canvas pixels; numpy arrays or tensors ``(..., 2)``."""
        x0, y0, w, h = self.placement
        out = points * 1.0
        out[..., 0] = points[..., 0] * (w / self.width) + x0
        out[..., 1] = points[..., 1] * (h / self.height) + y0
        return out

    def to_source(self, points):
        """Canvas pixels -> source pixels; numpy arrays or tensors ``(..., 2)``."""
        x0, y0, w, h = self.placement
        out = points * 1.0
        out[..., 0] = (points[..., 0] - x0) * (self.width / w)
        out[..., 1] = (points[..., 1] - y0) * (self.height / h)
        return out

    def fit(self, image: np.ndarray, fill: int = 255) -> np.ndarray:
        """Resize ``image`` (H, W[, C]) onto the square canvas, padding with ``fill``."""
        x0, y0, w, h = self.placement
        shrink = w < self.width
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out = np.full((self.size, self.size) + image.shape[2:], fill, dtype=image.dtype)
        out[y0:y0 + h, x0:x0 + w] = small.reshape((h, w) + image.shape[2:])
        return out

    def resized(self, size: int) -> "Letterbox":
        """The same frame on a canvas of another size."""
        return Letterbox(self.width, self.height, size)

    def inside(self) -> np.ndarray:
        """Boolean (size, size) map of the canvas pixels that show the frame (not padding)."""
        x0, y0, w, h = self.placement
        out = np.zeros((self.size, self.size), bool)
        out[y0:y0 + h, x0:x0 + w] = True
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
