"""Tracking with CoTracker3's offline predictor, from a local checkpoint.

CoTracker is not on PyPI: install it from its git repository (``pip install -e co-tracker``)
or point ``DYNASKETCH_COTRACKER_PATH`` at a checkout. Same call surface as every tracker
here: ``track(video, points) -> tracks, visible``. Videos longer than the predictor's window
are tracked window by window, each continuing from where the last one ended, so a long clip
never sits on the GPU whole. A point CoTracker loses stays lost (the track term only uses
points seen since the start of the window).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import EngineError


def import_predictor():
    from ..availability import INSTALL, make_importable

    make_importable("cotracker")
    try:
        from cotracker.predictor import CoTrackerPredictor
    except ImportError:
        raise EngineError(f"CoTracker is not installed: {INSTALL['cotracker']}") from None
    return CoTrackerPredictor


class CoTrackerTracker:
    name = "cotracker3"

    def __init__(self, checkpoint: str, device, window: int = 60,
                 model_resolution: tuple[int, int] | None = None):
        predictor_class = import_predictor()
        self.device = torch.device(device)
        try:
            self.predictor = predictor_class(checkpoint=checkpoint, offline=True, window_len=window)
        except Exception as exc:
            raise EngineError(f"cannot load CoTracker weights from {checkpoint} ({type(exc).__name__}); "
                              "run `dynasketch models download cotracker3-offline`") from None
        if model_resolution:                    # a smaller working resolution: faster, coarser
            self.predictor.interp_shape = tuple(model_resolution)
            self.predictor.model.model_resolution = tuple(model_resolution)
        self.predictor = self.predictor.to(self.device).eval()
        self.window = window

    @torch.no_grad()
    def track(self, video: np.ndarray, points: np.ndarray,
              start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """See ``tracking``: tracks ``(T, P, 2)`` and visibility ``(T, P)``; ``start`` gives each
        point's frame (CoTracker's query time) when the video fits one predictor window."""
        if start is not None and np.any(start):
            return self._track_from(video, points, np.asarray(start))
        t_len = len(video)
        tracks = np.zeros((t_len, len(points), 2), np.float32)
        visible = np.zeros((t_len, len(points)), bool)
        tracks[0], visible[0] = points, True
        start, current, alive = 0, points.astype(np.float32), np.ones(len(points), bool)
        while start < t_len - 1:
            stop = min(t_len, start + self.window)
            got, seen = self._predict(video[start:stop], np.zeros(len(points)), current)
            seen = np.logical_and.accumulate(seen, axis=0) & alive            # lost stays lost
            tracks[start:stop], visible[start:stop] = got, seen
            visible[start] = alive
            current, alive = got[-1], seen[-1]
            start = stop - 1
        return tracks, visible

    def _track_from(self, video: np.ndarray, points: np.ndarray, start: np.ndarray):
        """Points given on different frames: one predictor call with each point's frame as its
        query time; a video longer than a window goes start by start."""
        t_len = len(video)
        tracks = np.repeat(points[None].astype(np.float32), t_len, 0)
        visible = np.zeros((t_len, len(points)), bool)
        if t_len > self.window:
            for s in np.unique(start):
                own = start == s
                tracks[s:, own], visible[s:, own] = self.track(video[s:], points[own])
            return tracks, visible
        got, seen = self._predict(video, start, points)
        after = np.arange(t_len)[:, None] >= start[None]                  # (T, P)
        seen = np.logical_and.accumulate(seen | ~after, axis=0) & after     # lost stays lost
        seen[start, np.arange(len(points))] = True
        tracks[after] = got[after]
        tracks[start, np.arange(len(points))] = points
        return tracks, seen

    def _predict(self, video: np.ndarray, times: np.ndarray, points: np.ndarray):
        """One predictor call: ``points`` ``(P, 2)`` queried on frames ``times`` ``(P,)``;
        tracks ``(T, P, 2)`` and the predictor's visibility ``(T, P)``, as arrays."""
        clip = torch.from_numpy(np.ascontiguousarray(video)).to(self.device)
        clip = clip.permute(0, 3, 1, 2)[None].float()                        # (1, T, 3, H, W), 0-255
        queries = torch.from_numpy(np.concatenate([np.asarray(times)[:, None], points], 1)).float()
        got, seen = self.predictor(clip, queries=queries[None].to(self.device))
        return got[0].float().cpu().numpy(), seen[0].cpu().numpy().astype(bool)
