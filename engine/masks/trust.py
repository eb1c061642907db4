"""The trust check: a network's mask that jumps (its area or place changes at once) or breaks
into scattered pieces is not the subject's; the last trusted mask, carried to this frame by
optical flow, stands in for it, so no stroke is sent onto the background.

``MaskTrust.check(mask, rgb)`` is called once per frame, in order, and returns the mask to use
and a note (``None`` when the mask is trusted). Each frame's mask is compared with the last
trusted one carried to it, so a subject that moves or grows steadily is never flagged. A
change that lasts (``HOLD`` frames in a row) is taken: the subject really changed, or left.
``TrustedMasker`` puts the check behind any masker and keeps the notes per frame index, which
the run writes to its log and to ``sketch.json``.
"""
from __future__ import annotations

import cv2
import numpy as np

from .flow import backward, flow_grey, new_flow, warp

AREA_JUMP = 2.0          # area more than this many times (or under its inverse) the carried one
MIN_OVERLAP = 0.35       # intersection over union with the carried mask below this: it jumped
SCATTERED = 0.5          # the largest piece holds under this share of the mask, in 3+ pieces
EMPTY = 2e-4             # under this share of the frame: no subject
HOLD = 12                # frames in a row a change is held back before it is taken


def pieces(mask: np.ndarray) -> tuple[int, float]:
    """The number of pieces of ``mask`` (``(H, W)`` bool) bigger than 0.5% of it, and the
    share of its area the largest one holds."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    total = max(int(areas.sum()), 1)
    return int((areas > 0.005 * total).sum()), float(areas[0] / total) if len(areas) else 0.0


def judge(mask: np.ndarray, carried: np.ndarray | None) -> str | None:
    """Why ``mask`` (``(H, W)`` bool) is not to be trusted against the last trusted mask
    carried to its frame (``carried``, bool), or None."""
    area = float(mask.mean())
    if area < EMPTY:
        return "empty"
    count, largest = pieces(mask)
    if count >= 3 and largest < SCATTERED:
        return f"scattered into {count} pieces"
    if carried is None or not carried.any():
        return None
    before = float(carried.mean())
    ratio = area / max(before, 1e-9)
    if ratio > AREA_JUMP or ratio < 1.0 / AREA_JUMP:
        return f"area jumped {ratio:.2f}x"
    overlap = float((mask & carried).sum()) / max(float((mask | carried).sum()), 1.0)
    if overlap < MIN_OVERLAP:
        return f"moved (overlap {overlap:.2f} with the frame before)"
    return None


class MaskTrust:
    """Decides, frame after frame, which mask to use: the new one, or the last trusted one
    carried to this frame (for at most ``hold`` frames in a row)."""

    def __init__(self, hold: int = HOLD):
        self.hold = hold
        self.held = 0                # frames in a row whose mask was held back

    def decide(self, mask: np.ndarray, carried: np.ndarray | None) -> tuple[np.ndarray, str | None]:
        """``mask`` (bool) against ``carried`` (the last mask used, carried to this frame;
        bool or None) -> (the mask to use, why ``mask`` was not trusted or None)."""
        why = judge(mask, carried)
        if why is not None and carried is not None and carried.any() and self.held < self.hold:
            self.held += 1
            return carried, f"{why}; held the mask carried from the frame before"
        if why is not None:
            why += f"; taken after {self.held} frames held" if self.held else "; nothing to hold, kept"
        self.held = 0
        return mask, why


class TrustedMasker:
    """A masker (``masker(index, rgb, alpha) -> mask or None``) with the trust check after it,
    the last mask used carried to each frame by optical flow; ``notes``: why a frame's mask
    was replaced, by source frame index."""

    def __init__(self, masker, hold: int = HOLD):
        self.masker = masker
        self.trust = MaskTrust(hold)
        self.flow = new_flow()
        self.used = None             # the last mask used, float32
        self.grey = None
        self.notes: dict[int, str] = {}

    def __getattr__(self, attribute):
        """The wrapped masker's own (``name``, ``cache``, ...)."""
        return getattr(self.__dict__["masker"], attribute)

    def __call__(self, index, rgb, alpha):
        mask = self.masker(index, rgb, alpha)
        if mask is None:
            return None
        grey = flow_grey(rgb)
        carried = None if self.used is None else warp(self.used, backward(self.flow, self.grey, grey)) > 0.5
        self.grey = grey
        kept, why = self.trust.decide(mask > 0.5, carried)
        if why is not None:
            self.notes[index] = why
        self.used = kept.astype(np.float32)
        return self.used
