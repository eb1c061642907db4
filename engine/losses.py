"""Loss terms. All are batched over frames ``B`` and strokes ``N`` and return ``(B,)``.

Guidance (how much the sketch looks like the frame):
  ``LineLoss``: the weight-free default, a multi-scale comparison of the sketch's ink with
  an XDoG line rendition of the (masked) frame.

Stroke prior:
  ``short_stroke_loss``: strokes keep at least a minimum length; a pixel-matching loss
  otherwise shrinks strokes it cannot place into dots.

Temporal coherence (DynaSketch), on ``M`` points sampled along each stroke ``(B, N, M, 2)``:
  ``track_loss``: points follow their tracked positions where the tracker sees them;
  ``shape_loss``: distances between neighbouring points stay as in the previous frame;
  ``group_loss``: strokes that touch keep their placement relative to each other once the
  group's rigid motion is removed.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .imageops import composite_on_white, grey, pyramid, xdog_ink


class LineLoss:
    """Multi-scale L2 between the sketch's ink and an XDoG line rendition of the frame.

    Each pyramid level is normalised to unit mean ink, so a handful of strokes is compared
    with the *distribution* of lines in the frame, from fine (edges) to coarse (mass).
    """

    name = "line-loss"

    def __init__(self, levels: int = 5, sigma: float = 0.8):
        self.levels = levels
        self.sigma = sigma

    def prepare(self, frames: Tensor, masks: Tensor | None, copies: int = 1) -> list[Tensor]:
        """Targets for ``frames`` ``(B, 3, H, W)`` in [0, 1] and ``masks`` ``(B, 1, H, W)``,
        each frame sketched ``copies`` times (sketches ``(B * copies, ...)``, a keyframe's seeds)."""
        ink = xdog_ink(composite_on_white(frames, masks), sigma=self.sigma)
        if masks is not None:
            ink = ink * masks
        return [self._normalise(level).repeat_interleave(copies, 0) for level in pyramid(ink, self.levels)]

    def __call__(self, sketches: Tensor, target: list[Tensor]) -> Tensor:
        """``sketches`` ``(B, 3, H, W)``: black strokes on white. Returns ``(B,)``."""
        ink = 1.0 - grey(sketches)
        loss = 0.0
        for level, wanted in zip(pyramid(ink, self.levels), target):
            loss = loss + (self._normalise(level) - wanted).square().mean((1, 2, 3))
        return loss / self.levels

    @staticmethod
    def _normalise(ink: Tensor) -> Tensor:
        return ink / (ink.mean((1, 2, 3), keepdim=True) + 1e-3)


def short_stroke_loss(points: Tensor, min_length: float) -> Tensor:
    """Squared shortfall (px^2) of each stroke's length below ``min_length``, summed over strokes."""
    length = (points[..., 1:, :] - points[..., :-1, :]).norm(dim=-1).sum(-1)     # (B, N)
    return (min_length - length).clamp_min(0.0).square().sum(-1)


def track_loss(points: Tensor, tracks: Tensor, visible: Tensor) -> Tensor:
    """Mean squared distance (canvas px^2) of points to their tracks, where visible."""
    weight = visible.to(points.dtype)
    sq = (points - tracks).square().sum(-1) * weight
    return sq.sum((1, 2)) / weight.sum((1, 2)).clamp_min(1.0)


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
