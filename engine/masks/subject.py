"""The subject the artist picked: boxes around it (``--subject X,Y,W,H[@FRAME]``) and the
follower that masks it on every frame.

A salient-object network finds the one thing in a tight crop far better than in a busy
frame, so ``SubjectMasker`` runs ISNet on a square crop around the subject's box on each
frame and keeps the pieces of its mask that lie in the box and on the subject carried from
the frame before, never further out than the box grown by ``GATE_MARGIN``. The box moves with
the subject (the shift and zoom that carry the subject's pixels by optical flow, so it does
not grow with whatever the mask takes in) and settles a fifth of the way towards the mask's
bounds each frame, growing at most 2% a frame beyond that zoom, so it follows changes of
shape. The crop is tight (1.25 times the box): the less background the network sees, the
less of it it calls the subject. A box the artist gives on a later frame corrects the
follow there. The trust check (``trust.MaskTrust``) holds the carried mask where the crop's
mask jumps. Without a network (no weights) the followed box itself is the mask.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from ..canvas import subject_bounds
from ..errors import EngineError
from ..video import FrameRange
from .flow import backward, flow_grey, new_flow, warp
from .trust import HOLD, MaskTrust

CROP_MARGIN = 1.25       # the crop's side, times the box's longer side (docs/BENCHMARKS.md: subjects)
GATE_MARGIN = 0.15       # a piece of the crop's mask is the subject's when it lies in the box grown by this
KEEP_INSIDE = 0.7        # ... by at least this share of its area (and on the carried subject)
CROP_SIZE = 512          # ISNet's input on the crop (docs/BENCHMARKS.md: masks)
MIN_CROP = 96            # source pixels
SETTLE = 0.2             # each frame the box moves this share of the way to the mask's bounds
GROW = 0.02              # ... but grows by at most this share of its size beyond the flow's zoom


@dataclass(frozen=True)
class SubjectBox:
    """A box around the subject on one source frame: top-left ``x, y``, size ``w, h`` in
    source pixels (y down); ``frame`` None until resolved to the first sketched frame."""

    x: float
    y: float
    w: float
    h: float
    frame: int | None = None

    PATTERN = re.compile(r"^\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*(?:@\s*(-?\d+))?\s*$")

    @classmethod
    def parse(cls, text: str) -> "SubjectBox":
        match = cls.PATTERN.match(text)
        if not match:
            raise EngineError(f"--subject {text!r}: give a box as X,Y,W,H or X,Y,W,H@FRAME in source "
                              "pixels, e.g. --subject 120,80,300,400@0")
        x, y, w, h = (float(v) for v in match.groups()[:4])
        frame = None if match.group(5) is None else int(match.group(5))
        return cls(x, y, w, h, frame)

    def text(self) -> str:
        return f"{self.x:g},{self.y:g},{self.w:g},{self.h:g}@{self.frame}"

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


def resolve_boxes(texts: list[str], width: int, height: int, frame_range: FrameRange) -> list[str]:
    """``--subject`` boxes checked against the clip and the sketched range, clipped to the
    frame, each on its frame (default: the first sketched frame), in frame order, as text.
    A box that cannot be used raises the EngineError that says why."""
    boxes = {}
    first, last = frame_range.start, frame_range.stop - 1
    for text in texts:
        box = SubjectBox.parse(text)
        frame = first if box.frame is None else box.frame
        if box.w <= 0 or box.h <= 0:
            raise EngineError(f"--subject {text}: the box has no size ({box.w:g} x {box.h:g}); "
                              "give its width and height in source pixels")
        x0, y0, x1, y1 = max(box.x, 0), max(box.y, 0), min(box.x + box.w, width), min(box.y + box.h, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise EngineError(f"--subject {text}: the box lies outside the {width}x{height} frame; "
                              "give it in source pixels, origin at the top left")
        if not first <= frame <= last:
            raise EngineError(f"--subject {text}: frame {frame} is not sketched (frames {first} to {last}); "
                              "put the box on a frame of --frames")
        if frame in boxes:
            raise EngineError(f"--subject: two boxes on frame {frame}; give one box per frame")
        boxes[frame] = SubjectBox(round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2), frame)
    return [boxes[f].text() for f in sorted(boxes)]


def shifted(box: tuple, grey_then: np.ndarray, grey_now: np.ndarray, width: int, height: int) -> tuple:
    """``box`` moved from the small grey frame ``grey_then`` to ``grey_now`` (``flow_grey``) by
    the median motion of the corners inside it that Lucas-Kanade follows both ways (a flat
    floor shows no motion, whatever moves over it); unmoved without such corners."""
    sh, sw = grey_then.shape[:2]
    fx, fy = sw / width, sh / height
    x0, y0, x1, y1 = box
    region = np.zeros_like(grey_then)
    region[max(int(y0 * fy), 0):max(int(np.ceil(y1 * fy)), 0), max(int(x0 * fx), 0):max(int(np.ceil(x1 * fx)), 0)] = 255
    corners = cv2.goodFeaturesToTrack(grey_then, 200, 0.01, 3, mask=region)
    if corners is None or len(corners) < 3:
        return box
    ahead, ok, _ = cv2.calcOpticalFlowPyrLK(grey_then, grey_now, corners, None)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(grey_now, grey_then, ahead, None)
    good = (ok[:, 0] == 1) & (ok_back[:, 0] == 1) & (np.linalg.norm((back - corners)[:, 0], axis=1) < 1.0)
    if good.sum() < 3:
        return box
    dx, dy = np.median((ahead - corners)[good, 0], axis=0)
    dx, dy = float(dx) / fx, float(dy) / fy
    return x0 + dx, y0 + dy, x1 + dx, y1 + dy


def carried_box(box: tuple, carried: np.ndarray, back: np.ndarray, width: int, height: int) -> tuple | None:
    """``box`` carried to this frame with the subject: the shift and zoom that best map where
    the carried subject's pixels were (``back``: the small backward flow) to where they are
    now, so the box keeps its own size and does not grow with whatever the mask takes in."""
    sh, sw = back.shape[:2]
    small = cv2.resize(carried.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
    ys, xs = np.nonzero(small)
    if len(xs) < 8:
        return None
    now = np.stack([xs, ys], 1).astype(np.float64)
    then = now + back[ys, xs].astype(np.float64)
    mn, mt = now.mean(0), then.mean(0)
    spread = ((then - mt) ** 2).sum()
    zoom = float(np.clip(((now - mn) * (then - mt)).sum() / spread, 0.9, 1.1)) if spread > 0 else 1.0
    fx, fy = width / sw, height / sh
    x0, y0, x1, y1 = box
    cx, cy = (mt[0] * fx, mt[1] * fy)
    nx, ny = (mn[0] * fx, mn[1] * fy)
    return (nx + zoom * (x0 - cx), ny + zoom * (y0 - cy), nx + zoom * (x1 - cx), ny + zoom * (y1 - cy))


def settled(box: tuple, found: tuple | None) -> tuple:
    """The box moved ``SETTLE`` of the way towards the bounds of the subject's mask, so it
    takes the subject's changes of shape over a few frames but no sudden grab; it grows by
    at most ``GROW`` of its width and height a frame (the subject's own growth is the zoom
    ``carried_box`` already gave it), so background the mask takes in cannot widen it fast."""
    if found is None:
        return box
    x0, y0, x1, y1 = (a + SETTLE * (b - a) for a, b in zip(box, found))
    w = min(x1 - x0, (box[2] - box[0]) * (1 + GROW))
    h = min(y1 - y0, (box[3] - box[1]) * (1 + GROW))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0


def crop_around(box: tuple, width: int, height: int) -> tuple[int, int, int, int]:
    """The square crop ``(x0, y0, x1, y1)`` around ``box``, ``CROP_MARGIN`` times its longer
    side, moved to lie in the frame (and cut to it where the frame is smaller)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * CROP_MARGIN
    side = min(max(side, MIN_CROP), max(width, height))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left = int(round(np.clip(cx - side / 2.0, 0, max(width - side, 0))))
    top = int(round(np.clip(cy - side / 2.0, 0, max(height - side, 0))))
    return left, top, min(width, left + int(round(side))), min(height, top + int(round(side)))


def subject_pieces(found: np.ndarray, gate: tuple, carried: np.ndarray | None) -> np.ndarray:
    """The part of ``found`` (``(H, W)`` bool) that is the subject's. Its pieces are cut apart
    where they touch through something thin (a hand on the subject, a leash): opened by a
    disc about 4% of the box's size; each piece is kept when at least ``KEEP_INSIDE`` of it
    lies in the box ``gate`` grown by ``GATE_MARGIN`` and on the subject ``carried`` from the
    frame before (where there is one), and grown back over the pixels of ``found`` it had, no
    further out than that grown box."""
    x0, y0, x1, y1 = gate
    radius = int(max(1, 0.04 * np.sqrt(max((x1 - x0) * (y1 - y0), 1.0))))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    core = cv2.erode(found.astype(np.uint8), disc)
    count, labels, _, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    if count <= 1:
        return found & (cv2.dilate(core, disc) > 0) if core.any() else found
    h, w = found.shape
    gx, gy = (x1 - x0) * GATE_MARGIN, (y1 - y0) * GATE_MARGIN
    in_box = np.zeros_like(found)
    in_box[max(int(y0 - gy), 0):min(int(y1 + gy) + 1, h), max(int(x0 - gx), 0):min(int(x1 + gx) + 1, w)] = True
    inside = in_box & carried if carried is not None and carried.any() else in_box
    area = np.bincount(labels.ravel(), minlength=count).astype(np.float64)
    within = np.bincount(labels.ravel(), weights=inside.ravel(), minlength=count)
    keep = within / np.maximum(area, 1) >= KEEP_INSIDE
    keep[0] = False
    if not keep[1:].any():
        keep[1 + int(np.argmax(within[1:]))] = within[1:].max() > 0
    kept = keep[labels].astype(np.uint8)
    grown = cv2.dilate(kept, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * radius + 1,) * 2)) > 0
    return found & grown & in_box                # and no further out than the grown box


class SubjectMasker:
    """Masks the subject the artist boxed on every frame of ``frame_range``, in order: ISNet
    (``session_of()`` gives its ONNX Runtime session) on a crop around the followed box, or,
    with ``session_of`` None, the followed box itself. ``boxes``: ``resolve_boxes``'s text.
    ``start``: the box ``(x0, y0, x1, y1)`` on the range's first frame when a resumed run
    continues a follow. ``notes`` holds the trust check's notes by frame index, ``followed``
    each frame's box (the resume state)."""

    def __init__(self, session_of, clip, frame_range: FrameRange, boxes: list[str],
                 start: tuple | None = None, size: int = CROP_SIZE, hold: int = HOLD):
        self.session_of, self.session = session_of, None
        self.name = "isnet-subject" if session_of is not None else "box"
        self.width, self.height = clip.info.width, clip.info.height
        self.given = {}
        for text in boxes:
            b = SubjectBox.parse(text)
            self.given[b.frame] = b.corners
        self.size = size
        self.flow = new_flow()
        self.box = start
        self.grey = None
        self.trust = MaskTrust(hold)
        self.trusted = None              # the last mask used, float32 (H, W)
        self.notes: dict[int, str] = {}
        self.followed: dict[int, tuple] = {}
        if self.box is None:
            before = [f for f in sorted(self.given) if f <= frame_range.start]
            if before:
                self.box = self.given[before[-1]]
            else:                        # the first box is on a later frame: follow it back
                self.box = self._followed_back(clip, frame_range)

    def _followed_back(self, clip, frame_range: FrameRange) -> tuple:
        """The first box carried back by optical flow to the range's first frame (a box given
        on a later frame than the first sketched)."""
        frame = min(self.given)
        greys = [flow_grey(rgb) for _, rgb, _ in clip.frames(FrameRange(frame_range.start, frame + 1))]
        box = self.given[frame]
        for later, earlier in zip(greys[::-1], greys[-2::-1]):
            box = shifted(box, later, earlier, self.width, self.height)
        return box

    def _network(self, rgb: np.ndarray, crop: tuple) -> np.ndarray:
        """ISNet's subject map on ``crop`` of ``rgb``, pasted into a frame-sized float32 map."""
        from .isnet import probability

        if self.session is None:
            self.session = self.session_of()
        x0, y0, x1, y1 = crop
        part = rgb[y0:y1, x0:x1]
        prob = np.zeros(rgb.shape[:2], np.float32)
        prob[y0:y1, x0:x1] = cv2.resize(probability(self.session, part, self.size), (x1 - x0, y1 - y0),
                                        interpolation=cv2.INTER_LINEAR)
        return prob

    def __call__(self, index, rgb, alpha):
        grey = flow_grey(rgb)
        carried = None
        if self.grey is not None:
            back = backward(self.flow, self.grey, grey)
            if self.trusted is not None and self.session_of is not None:
                carried = warp(self.trusted, back) > 0.5
            moved = None if carried is None else carried_box(self.box, carried, back, self.width, self.height)
            self.box = moved if moved is not None else shifted(self.box, self.grey, grey, self.width, self.height)
        self.grey = grey
        if index in self.given:                          # the artist's box corrects the follow
            self.box, carried, self.trust.held = self.given[index], None, 0
        if self.session_of is None:
            found = np.zeros(rgb.shape[:2], bool)
            x0, y0, x1, y1 = (int(round(v)) for v in self.box)
            found[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
        else:
            crop = crop_around(self.box, self.width, self.height)
            found = subject_pieces(self._network(rgb, crop) > 0.5, self.box, carried)
        mask, why = self.trust.decide(found, carried)
        if why is not None:
            self.notes[index] = why
        self.trusted = mask.astype(np.float32)
        self.box = settled(self.box, subject_bounds(mask))
        self.followed[index] = tuple(round(float(v), 2) for v in self.box)     # plain floats: the resume state
        return mask.astype(np.float32)
