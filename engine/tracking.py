"""Point tracking: where do points of one frame go in the following frames?

The call surface follows CoTracker's predictor: video in, tracks out.
``tracker.track(video, points, start=None)`` takes ``video`` ``(T, H, W, 3) uint8`` RGB
frames and ``points`` ``(P, 2)`` pixel positions (x, y) in ``video[0]``, or in
``video[start[i]]`` for point i (CoTracker's queries carry a frame too); it returns
``tracks`` ``(T, P, 2)`` and ``visible`` ``(T, P)`` bool. Before its start a point is not
visible and sits where it was given. A point that is lost stays lost; its position freezes
where it was last seen.

As in DynaSketch, a grid of points inside the subject's mask is tracked (``grid_queries``,
40 x 40 over the frame by default), together with points along the strokes, in one call.
A stroke point follows its own track while the tracker sees it; once lost, it goes on with
the motion of the grid points around it (``follow_grid``, ``with_grid_fallback``) and counts
as seen while most of them are. A lone point on a plain surface is easily lost; the grid
around it on the subject seldom is.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .canvas import thin_parts


def grid_queries(mask: Tensor | None, area: tuple[float, float, float, float], size: int,
                 least: int = 16, device: torch.device | None = None) -> Tensor:
    """A ``size`` x ``size`` grid of points ``(Q, 2)`` over ``area`` ``(x0, y0, x1, y1)``,
    kept where ``mask`` ``(H, W)`` is set (the whole grid when fewer than ``least`` are),
    on the mask's device, else on ``device``."""
    x0, y0, x1, y1 = area
    device = mask.device if mask is not None else device
    xs = torch.linspace(x0, x1, size + 2, device=device)[1:-1]
    ys = torch.linspace(y0, y1, size + 2, device=device)[1:-1]
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx.flatten(), gy.flatten()], -1)
    if mask is None:
        return grid
    h, w = mask.shape
    col = grid[:, 0].long().clamp(0, w - 1)
    row = grid[:, 1].long().clamp(0, h - 1)
    inside = mask[row, col] > 0.5
    return grid[inside] if int(inside.sum()) >= least else grid


def follow_grid(grid_tracks: Tensor, grid_visible: Tensor, points: Tensor, start: int = 0,
                neighbours: int = 4) -> tuple[Tensor, Tensor]:
    """Move ``points`` ``(Q, 2)``, given on frame ``start``, with the tracked grid.

    ``grid_tracks`` ``(T, G, 2)`` and ``grid_visible`` ``(T, G)``. Each point takes the
    inverse-distance weighted motion of its ``neighbours`` nearest grid points seen on frame
    ``start``, counting only those still seen; it is visible while they carry at least half
    of its weight, and once lost stays lost (frozen where it was last seen).
    Returns ``tracks`` ``(T - start, Q, 2)`` and ``visible`` ``(T - start, Q)``.
    """
    seen = torch.cumprod(grid_visible[start:].to(points.dtype), 0)          # lost stays lost
    reference = grid_tracks[start]
    t_len, q = len(seen), len(points)
    k = min(neighbours, int((seen[0] > 0).sum()))
    if k == 0:
        visible = torch.zeros(t_len, q, dtype=torch.bool, device=points.device)
        visible[0] = True
        return points[None].expand(t_len, q, 2).clone(), visible
    distance = torch.cdist(points, reference).masked_fill(seen[0][None] == 0, float("inf"))
    near, index = distance.topk(k, largest=False)                           # (Q, k)
    weight = 1.0 / (near + 1.0)
    live = weight[None] * seen[:, index]                                    # (T, Q, k)
    motion = grid_tracks[start:, index] - reference[index][None]            # (T, Q, k, 2)
    moved = (live[..., None] * motion).sum(-2) / live.sum(-1, keepdim=True).clamp_min(1e-9)
    visible = torch.cumprod((live.sum(-1) >= 0.5 * weight.sum(-1)).to(torch.int8), 0).bool()
    tracks = points[None] + moved
    return torch.where(visible[..., None], tracks, last_seen(tracks, visible)[None]), visible


def last_seen(tracks: Tensor, visible: Tensor) -> Tensor:
    """Where each point ``(Q, 2)`` was on the last frame it was seen (visibility only ever
    goes from seen to lost); the first frame for a point never seen."""
    last = (visible.long().sum(0) - 1).clamp_min(0)
    return tracks[last, torch.arange(tracks.shape[1], device=tracks.device)]


def with_grid_fallback(tracks: Tensor, visible: Tensor, grid_tracks: Tensor, grid_visible: Tensor,
                       start: int = 0) -> tuple[Tensor, Tensor]:
    """Points' own ``tracks`` ``(T - start, Q, 2)`` and ``visible``, from frame ``start`` of the
    grid's; where a point's own track is lost it continues, without a jump, with the grid's
    motion (``follow_grid``). Returns tracks and visibility of the same shapes."""
    via, via_visible = follow_grid(grid_tracks, grid_visible, tracks[0], start)
    offset = last_seen(tracks, visible) - last_seen(via, visible)
    return (torch.where(visible[..., None], tracks, via + offset[None]),
            visible | via_visible)


def solid_and_thin(mask: Tensor | None) -> tuple[Tensor | None, np.ndarray | None]:
    """A canvas mask ``(1, C, C)`` split into its solid parts ``(C, C)`` (on its device) and
    the pixels within one of its thin parts ``(C, C)`` bool (``canvas.thin_parts``, grown by a
    pixel); None and None without a mask."""
    if mask is None:
        return None, None
    subject = mask[0].cpu().numpy() > 0.5
    thin = cv2.dilate(thin_parts(subject).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return mask[0] * torch.from_numpy(~thin).to(mask), thin


STRAY = 4.0                  # 224-canvas px a thin part's point may stray from the solid parts' motion


def thin_parts_with_grid(tracks: Tensor, visible: Tensor, points: Tensor, thin: np.ndarray,
                         grid_tracks: Tensor, grid_visible: Tensor, stray: float) -> tuple[Tensor, Tensor]:
    """``tracks`` ``(T, Q, 2)`` and ``visible`` of ``points`` ``(Q, 2)`` (frame 0) where each
    point on ``thin`` (``(H, W)`` bool: the subject's thin parts) whose track strays more than
    ``stray`` px on some frame from the motion of the grid around it (``follow_grid``: the
    subject's solid parts) takes that motion instead. A one-pixel string fills a sliver of
    the tracker's window, which then follows the background behind it."""
    h, w = thin.shape
    p = points.detach().cpu().numpy()
    on = thin[np.clip(p[:, 1].astype(int), 0, h - 1), np.clip(p[:, 0].astype(int), 0, w - 1)]
    if not on.any():
        return tracks, visible
    index = torch.from_numpy(np.flatnonzero(on)).to(points.device)
    via, via_visible = follow_grid(grid_tracks, grid_visible, points[index])
    strays = ((tracks[:, index] - via).norm(dim=-1) > stray).any(0)
    tracks, visible = tracks.clone(), visible.clone()
    tracks[:, index[strays]], visible[:, index[strays]] = via[:, strays], via_visible[:, strays]
    return tracks, visible


class LucasKanadeTracker:
    """OpenCV pyramidal Lucas-Kanade, chained frame to frame, with a forward-backward check."""

    name = "lucas-kanade"

    def __init__(self, window: int = 21, levels: int = 3, max_error: float = 1.0):
        self.params = dict(winSize=(window, window), maxLevel=levels,
                           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
        self.max_error = max_error          # forward-backward disagreement, pixels

    def track(self, video: np.ndarray, points: np.ndarray,
              start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        video = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video]) if video.ndim == 4 else video
        t_len, height, width = video.shape[:3]
        p = len(points)
        start = np.zeros(p, int) if start is None else np.asarray(start)
        tracks = np.repeat(points[None].astype(np.float32), t_len, 0)   # before its start: there
        visible = np.zeros((t_len, p), bool)
        visible[0] = self._in_frame(points, width, height) & (start == 0)
        for t in range(1, t_len):
            tracks[t] = np.where((start < t)[:, None], tracks[t - 1], points)
            born = start == t
            visible[t, born] = self._in_frame(points[born], width, height)
            alive = np.flatnonzero(visible[t - 1])
            if not len(alive):
                continue
            here = tracks[t - 1, alive].reshape(-1, 1, 2)
            ahead, ok_f, _ = cv2.calcOpticalFlowPyrLK(video[t - 1], video[t], here, None, **self.params)
            back, ok_b, _ = cv2.calcOpticalFlowPyrLK(video[t], video[t - 1], ahead, None, **self.params)
            error = np.linalg.norm((back - here).reshape(-1, 2), axis=1)
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
