"""Optical flow that carries a mask (or a map, or a box) from one frame to the next: OpenCV's
DIS flow on small grey frames, shared by ISNet's frames between, the subject follower and the
trust check."""
from __future__ import annotations

import functools

import cv2
import numpy as np

FLOW_SIDE = 480             # the carrying optical flow runs on frames this long at most


def new_flow():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)


def flow_grey(rgb: np.ndarray) -> np.ndarray:
    """The grey frame the carrying flow runs on: at most ``FLOW_SIDE`` pixels long."""
    scale = min(1.0, FLOW_SIDE / max(rgb.shape[:2]))
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)


@functools.lru_cache(maxsize=2)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's x and y, ``(h, w)`` float32 each: made once per frame size."""
    return tuple(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))


def backward(flow, grey_then: np.ndarray, grey_now: np.ndarray) -> np.ndarray:
    """For each pixel of the grey frame now, where it was in the frame then: ``(h, w, 2)``
    offsets on the small flow frames (``flow_grey``)."""
    return flow.calc(grey_now, grey_then, None)


def warp(prob: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``prob`` (an ``(H, W)`` float32 map of the frame then) moved along the backward flow
    ``back`` (``backward``) to the frame now: each pixel takes the map where it was."""
    h, w = prob.shape
    small_h, small_w = back.shape[:2]
    back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
    back[..., 0] *= w / small_w
    back[..., 1] *= h / small_h
    xx, yy = _pixel_grid(h, w)
    return cv2.remap(prob, xx + back[..., 0], yy + back[..., 1], cv2.INTER_LINEAR, borderValue=0)


def carry(prob: np.ndarray, grey_then: np.ndarray, grey_now: np.ndarray, flow) -> np.ndarray:
    """``prob`` (an ``(H, W)`` float32 map of the frame ``grey_then`` shows) moved to the frame
    ``grey_now`` shows: each pixel takes the map where the backward flow says it was."""
    return warp(prob, backward(flow, grey_then, grey_now))
