"""Point tracking: where do points of one frame go in the following frames?

The call surface follows CoTracker's predictor: video in, tracks out.
``tracker.track(video, points)`` takes ``video`` ``(T, H, W, 3) uint8`` RGB frames and
``points`` ``(P, 2)`` pixel positions (x, y) in ``video[0]``; it returns ``tracks``
``(T, P, 2)`` and ``visible`` ``(T, P)`` bool. A point that is lost stays lost; its
position freezes where it was last seen.
"""
from __future__ import annotations

import cv2
import numpy as np


class LucasKanadeTracker:
    """OpenCV pyramidal Lucas-Kanade, chained frame to frame, with a forward-backward check."""

    name = "lucas-kanade"

    def __init__(self, window: int = 21, levels: int = 3, max_error: float = 1.0):
        self.params = dict(winSize=(window, window), maxLevel=levels,
                           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
        self.max_error = max_error          # forward-backward disagreement, pixels

    def track(self, video: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        video = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video]) if video.ndim == 4 else video
        t_len, height, width = video.shape[:3]
        p = len(points)
        tracks = np.zeros((t_len, p, 2), np.float32)
        visible = np.zeros((t_len, p), bool)
        tracks[0] = points
        visible[0] = self._in_frame(points, width, height)
        for t in range(1, t_len):
            tracks[t] = tracks[t - 1]
            alive = np.flatnonzero(visible[t - 1])
            if not len(alive):
                continue
            start = tracks[t - 1, alive].reshape(-1, 1, 2)
            ahead, ok_f, _ = cv2.calcOpticalFlowPyrLK(video[t - 1], video[t], start, None, **self.params)
            back, ok_b, _ = cv2.calcOpticalFlowPyrLK(video[t], video[t - 1], ahead, None, **self.params)
            error = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
            ahead = ahead.reshape(-1, 2)
            ok = ((ok_f.ravel() == 1) & (ok_b.ravel() == 1) & (error < self.max_error)
                  & self._in_frame(ahead, width, height))
            tracks[t, alive[ok]] = ahead[ok]
            visible[t, alive[ok]] = True
        return tracks, visible

    @staticmethod
    def _in_frame(points: np.ndarray, width: int, height: int) -> np.ndarray:
        x, y = points[:, 0], points[:, 1]
        return (x >= 0) & (y >= 0) & (x <= width - 1) & (y <= height - 1)
