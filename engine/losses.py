"""Loss terms. All are batched over frames ``B`` and strokes ``N`` and return ``(B,)``.

Guidance (how much the sketch looks like the frame):
  ``ChamferLoss``: the weight-free default, the distance of the sketch's ink to the frame's
  lines (``engine.lines``), and to the subject where ink leaves it; ``coverage_loss`` is
  the other side, the distance of the subject's outline to the strokes; ``overlap_loss``
  keeps two strokes off one line.

Stroke prior:
  ``length_loss``: with the chamfer guidance, each stroke keeps its length on the keyframe.
  (CLIP has none, as CLIPasso.)

Temporal coherence (DynaSketch), on ``M`` points sampled along each stroke ``(B, N, M, 2)``:
  ``track_loss`` / ``track_distance_loss``: points follow their tracked positions where the
  tracker sees them (mean squared distance for the chamfer guidance; mean distance, the
  reference's, for CLIP);
  ``shape_loss`` / ``triplet_shape_loss``: distances between neighbouring points stay as in
  the previous frame (squared, neighbours; or absolute, over the three distances of every
  run of three points, the reference's);
  ``group_loss``: strokes that touch keep their placement relative to each other once the
  group's rigid motion is removed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from .imageops import grey


@dataclass
class ChamferTarget:
    distance: Tensor                 # (B, 1, C, C) to the nearest line pixel, 224-canvas px, capped
    outside: Tensor                  # (B, 1, C, C) outside the subject, 224-canvas px (0 inside)
    outline: Tensor                  # (B, K, 2) points along the silhouette, canvas px
    outline_valid: Tensor            # (B, K) which of them are points (frames differ in K)
    reach: Tensor                    # (B,) strokes closer than this draw one line (3% of the subject)


class ChamferLoss:
    """The weight-free guidance: the sketch's ink should lie on the frame's lines.

    The mean, over the ink of the sketch, of the distance to the nearest line pixel (the
    subject's silhouette and long interior lines, ``engine.lines``; a chamfer distance
    from the strokes to the lines, capped at ``cap`` px so far ink is pulled, not flung),
    plus ``outside_weight`` times the mean distance of ink outside the subject to it.
    Distances are in 224-canvas pixels whatever the canvas size.
    """

    name = "chamfer"
    starts_on_lines = True                   # the optimiser starts strokes on the lines

    def __init__(self, cap: float = 12.0, outside_weight: float = 1.0):
        self.cap = cap
        self.outside_weight = outside_weight

    def prepare(self, frames: Tensor, masks: Tensor | None, copies: int = 1,
                lines: list | None = None) -> ChamferTarget:
        """Targets for ``frames`` ``(B, 3, C, C)`` from their ``lines`` (``engine.lines.Lines``
        per frame; extracted here when not given, the whole canvas counting as the frame),
        each frame sketched ``copies`` times."""
        size = frames.shape[-1]
        if lines is None:
            from .lines import extract_lines

            rgb = (frames.detach() * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            subject = [None] * len(rgb) if masks is None else list(masks[:, 0].cpu().numpy() > 0.5)
            whole = np.ones((size, size), bool)
            lines = [extract_lines(image, m, whole) for image, m in zip(rgb, subject)]
        unit = size / 224.0
        distance, outside = [], []
        for item in lines:
            distance.append(np.minimum(item.distance() / unit, self.cap))
            out = (~item.subject).astype(np.uint8)
            outside.append(cv2.distanceTransform(out, cv2.DIST_L2, 5) / unit if item.subject.any()
                           else np.zeros(out.shape, np.float32))
        outline = [self._outline(item) for item in lines]
        longest = max(1, max(len(o) for o in outline))
        points = np.zeros((len(lines), longest, 2), np.float32)
        valid = np.zeros((len(lines), longest), bool)
        for b, o in enumerate(outline):
            points[b, :len(o)], valid[b, :len(o)] = o, True
        maps = torch.from_numpy(np.stack([np.stack(distance), np.stack(outside)], 1)).float()
        maps = maps.to(frames.device).repeat_interleave(copies, 0)          # (B, 2, C, C)
        return ChamferTarget(maps[:, :1], maps[:, 1:],
                             torch.from_numpy(points).to(frames.device).repeat_interleave(copies, 0),
                             torch.from_numpy(valid).to(frames.device).repeat_interleave(copies, 0),
                             torch.tensor([max(1.5, 0.03 * item.diagonal) for item in lines],
                                          device=frames.device).repeat_interleave(copies, 0))

    @staticmethod
    def _outline(item, spacing: float = 2.0) -> np.ndarray:
        """Points every ``spacing`` px along the silhouette runs, ``(K, 2)``."""
        runs = [r[::max(1, int(spacing))] for r in item.silhouette]
        return np.concatenate(runs).astype(np.float32) if runs else np.zeros((0, 2), np.float32)

    def __call__(self, sketches: Tensor, target: ChamferTarget) -> Tensor:
        """``sketches`` ``(B, 3, H, W)``: black strokes on white. Returns ``(B,)``."""
        ink = 1.0 - grey(sketches)
        total = ink.sum((1, 2, 3)).clamp_min(1e-3)
        on_lines = (ink * target.distance).sum((1, 2, 3)) / total
        off_subject = (ink * target.outside).sum((1, 2, 3)) / total
        return on_lines + self.outside_weight * off_subject


def coverage_loss(points: Tensor, outline: Tensor, valid: Tensor, cap: float) -> Tensor:
    """The other side of the chamfer: the mean distance (px) from the subject's outline
    points ``(B, K, 2)`` (``valid`` ``(B, K)``) to the nearest point along any stroke
    (``points`` ``(B, N, M, 2)``), capped at ``cap``: strokes spread along the silhouette
    instead of piling on one part of it."""
    flat = points.flatten(1, 2)                                               # (B, N*M, 2)
    nearest = torch.cdist(outline, flat).amin(-1).clamp_max(cap)             # (B, K)
    weight = valid.to(points.dtype)
    return (nearest * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)


def overlap_loss(points: Tensor, reach: Tensor) -> Tensor:
    """How far the points of each stroke (``(B, N, M, 2)``) come within ``reach`` ``(B,)``
    px of another stroke, squared, mean over points: two strokes never draw one line."""
    b, n, m, _ = points.shape
    flat = points.flatten(1, 2)
    d = torch.cdist(flat, flat).view(b, n, m, n, m).amin(-1)                  # (B, N, M, N)
    own = torch.eye(n, dtype=torch.bool, device=points.device)[None, :, None, :]
    d = d.masked_fill(own, float("inf")).amin(-1)                             # (B, N, M)
    return (reach[:, None, None] - d).clamp_min(0.0).square().mean((1, 2))


def length_loss(points: Tensor, anchor: Tensor) -> Tensor:
    """Squared relative change of each stroke's length (points ``(B, N, M, 2)``) from its
    ``anchor`` length ``(N,)`` or ``(B, N)`` (on the keyframe), mean over strokes: strokes
    neither grow nor collapse over a clip."""
    length = (points[..., 1:, :] - points[..., :-1, :]).norm(dim=-1).sum(-1)     # (B, N)
    return ((length - anchor) / anchor.clamp_min(1.0)).square().mean(-1)


def track_loss(points: Tensor, tracks: Tensor, visible: Tensor) -> Tensor:
    """Mean squared distance (canvas px^2) of points to their tracks, where visible."""
    weight = visible.to(points.dtype)
    sq = (points - tracks).square().sum(-1) * weight
    return sq.sum((1, 2)) / weight.sum((1, 2)).clamp_min(1.0)


def track_distance_loss(points: Tensor, tracks: Tensor, visible: Tensor) -> Tensor:
    """Mean distance (canvas px) of points to their tracks, where visible (DynaSketch's)."""
    weight = visible.to(points.dtype)
    distance = ((points - tracks).square().sum(-1) + 1e-12).sqrt() * weight
    return distance.sum((1, 2)) / weight.sum((1, 2)).clamp_min(1.0)


def triplet_shape_loss(points: Tensor, reference: Tensor) -> Tensor:
    """Mean absolute change (px) of the distances ``(j, j+1)``, ``(j, j+2)`` and ``(j+1, j+2)``
    within every run of three points ``j, j+1, j+2`` along each stroke (DynaSketch's shape term)."""
    def distances(p: Tensor) -> Tensor:
        a, b, c = p[..., :-2, :], p[..., 1:-1, :], p[..., 2:, :]
        pairs = torch.stack([a - b, a - c, b - c], -2)
        return (pairs.square().sum(-1) + 1e-12).sqrt()        # a gradient where points meet

    return (distances(points) - distances(reference)).abs().mean((1, 2, 3))


def shape_loss(points: Tensor, reference: Tensor) -> Tensor:
    """Change of the distances between neighbouring points of each stroke (px^2)."""
    now = (points[..., 1:, :] - points[..., :-1, :]).norm(dim=-1)
    before = (reference[..., 1:, :] - reference[..., :-1, :]).norm(dim=-1)
    return (now - before).square().mean((1, 2))


def group_loss(points: Tensor, reference: Tensor, groups: Tensor) -> Tensor:
    """Non-rigid change of each group of touching strokes (px^2).

    ``groups`` ``(N,)`` labels strokes; labels shared by two or more strokes form a group.
    For every group the best rotation + translation from ``reference`` to ``points`` is
    found in closed form (2-D Procrustes) and the remaining squared error is averaged.
    """
    b, n, m, _ = points.shape
    labels, counts = torch.unique(groups, return_counts=True)
    labels = labels[counts >= 2]
    if not len(labels):
        return points.new_zeros(b)
    member = (groups[None, :] == labels[:, None]).to(points.dtype)          # (G, N)
    size = member.sum(1) * m                                               # points per group
    cp = torch.einsum("gn,bnmd->bgd", member, points) / size[None, :, None]
    cr = torch.einsum("gn,bnmd->bgd", member, reference) / size[None, :, None]
    owner = member.argmax(0)                                               # group of each stroke
    in_group = member.sum(0) > 0                                           # (N,)
    p = points - cp[:, owner, None, :]
    r = reference - cr[:, owner, None, :]
    dot = torch.einsum("gn,bnm->bg", member, (r * p).sum(-1))
    cross = torch.einsum("gn,bnm->bg", member, r[..., 0] * p[..., 1] - r[..., 1] * p[..., 0])
    angle = torch.atan2(cross, dot)[:, owner]                              # (B, N)
    cos, sin = angle.cos()[..., None], angle.sin()[..., None]
    rotated = torch.stack([cos * r[..., 0] - sin * r[..., 1], sin * r[..., 0] + cos * r[..., 1]], -1)
    err = (p - rotated).square().sum(-1).mean(-1) * in_group.to(points.dtype)
    return err.sum(1) / in_group.sum().clamp_min(1)


def find_groups(points: Tensor, touch: float) -> Tensor:
    """Label strokes ``(N, M, 2)`` so that strokes closer than ``touch`` share a label."""
    n, m = points.shape[:2]
    flat = points.reshape(n * m, 2)
    close = torch.cdist(flat, flat).view(n, m, n, m).amin((1, 3)) < touch
    labels = torch.arange(n, device=points.device)
    for _ in range(n):                   # propagate the smallest label through touching pairs
        spread = torch.where(close, labels[None, :], n).amin(1)
        new = torch.minimum(labels, spread)
        if torch.equal(new, labels):
            break
        labels = new
    return labels
