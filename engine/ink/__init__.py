"""Ink: what each stroke's line looks like once the optimiser has placed it.

``weight``: a width per on-curve point (thick on strong, dark and silhouette edges, thin on
soft lines, tapered, steady over time); ``colour``: the footage's colour under each stroke,
steady over time; ``outline``: a variable-width stroke as a filled SVG outline. The pipeline
calls ``StrokeInk.draw`` once for each frame it writes, in frame order.
"""
from __future__ import annotations

import numpy as np

from .colour import StrokeColours
from .weight import LineWeights, split

__all__ = ["LineWeights", "StrokeColours", "StrokeInk", "split"]


class StrokeInk:
    """A clip's line weight and colour, frame after frame."""

    def __init__(self):
        self.weights = LineWeights()
        self.colours = StrokeColours()

    def resume_from(self, strokes: list[dict]) -> None:
        """Carry on after a frame already written (a resumed run)."""
        self.weights.resume_from(strokes)
        self.colours.resume_from(strokes)

    def draw(self, control: np.ndarray, rgb: np.ndarray, mask: np.ndarray | None, inside: np.ndarray | None,
             base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A frame's canvas strokes ``(N, 3S+1, 2)`` on its canvas image ``rgb`` ``(C, C, 3)``
        (``mask``: the subject's, ``inside``: the pixels showing the frame, each ``(C, C)`` or
        None) -> the split strokes ``(N, 3*S*4+1, 2)``, their widths ``(N, S*4+1)`` in the units
        of ``base`` (the one width), and their colours ``(N, 3)`` (sRGB, 0 to 1)."""
        control, widths = self.weights.weigh(control, rgb, mask, base)
        return control, widths, self.colours.colour(control, rgb, inside)
