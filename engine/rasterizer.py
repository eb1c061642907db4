"""The differentiable stroke rasterizer.

``SplatRasterizer`` draws anti-aliased cubic Bezier strokes with width and opacity into an
ink image, batched over frames and strokes, on any device, with gradients for the control
points, the widths and the opacities.

How: each stroke is cut into short straight pieces (about a pixel long). For every piece the
exact distance to the pixel centres of a small window around it is computed, turned into
box-filtered coverage ``clamp(w/2 + 1/2 - d, 0, 1)``, and scattered into the stroke's own
image with ``amax``: ink is the union of all strokes, like one pen pass, so the overlapping
pieces of a stroke, and crossing strokes, do not darken each other (opaque strokes render
exactly as with source-over compositing; translucent ones keep the darkest).
The work is proportional to the length of the strokes, not to pixels x segments.

Coordinates are canvas pixels, x right, y down; pixel (i, j) covers [i, i+1) x [j, j+1).
A different backend (for example diffvg) only needs the same ``__call__`` signature.

The number of pieces and the size of the window are shapes, so they must be known on the
host: measuring them reads the strokes back from the device, which on a GPU stalls the host
until the GPU has finished all queued work, every optimisation step. With ``replan_every``
(used on CUDA) a batch shape keeps its ``PiecePlan`` for that many calls, measured with
``headroom`` to spare (more, shorter pieces): strokes may grow by that factor before the next
plan; beyond it, pieces get longer than the window allows and the ink of that render thins
until the next plan. Only the loss sees these renders; the strokes are what is exported.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from . import bezier


@functools.lru_cache(maxsize=None)
def _window(side: int, device: torch.device) -> Tensor:
    """The pixel offsets ``(side * side, 2)`` of a piece's window, (x, y), made once per device."""
    offsets = torch.arange(side, device=device)
    oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
    return torch.stack([ox.flatten(), oy.flatten()], -1)


@dataclass(frozen=True)
class PiecePlan:
    pieces: int      # straight pieces per cubic segment
    side: int        # the square window of pixels around each piece


class SplatRasterizer:
    """Batched differentiable rasterizer; see the module docstring."""

    name = "splat"

    def __init__(self, piece_length: float = 1.0, max_pieces: int = 1024, replan_every: int = 0,
                 headroom: float = 1.25):
        self.piece_length = piece_length
        self.max_pieces = max_pieces
        self.replan_every = replan_every
        self.headroom = headroom
        self.plans: dict = {}            # (batch shape, size) -> [plan, calls since planned]

    def __call__(self, control: Tensor, width: Tensor, opacity: Tensor, size: int) -> Tensor:
        """Render strokes.

        control: ``(B, N, 3*S+1, 2)`` control points in canvas pixels.
        width, opacity: broadcastable to ``(B, N)``; with ``replan_every`` the widths must stay
        the same between plans.
        Returns the ink image ``(B, 1, size, size)`` in [0, 1] (1 = full ink).
        """
        b, n = control.shape[:2]
        width = width.to(control.dtype).expand(b, n)
        opacity = opacity.to(control.dtype).expand(b, n)
        plan, pieces = self._plan_for(control, width, size)
        a, d = pieces if pieces is not None else self._pieces(control, plan.pieces)  # (B, N, P, 2)
        reach = (plan.side - 1) / 2.0
        with torch.no_grad():
            corner = ((a + d) * 0.5 - reach).floor().long()         # (B, N, P, 2)
            pix = corner.unsqueeze(-2) + _window(plan.side, control.device)   # (B, N, P, Q, 2)
            inside = ((pix >= 0) & (pix < size)).all(-1)
            index = torch.where(inside, pix[..., 1] * size + pix[..., 0],
                                torch.full_like(pix[..., 0], size * size))
        # Distance from each pixel centre to its piece, x and y kept apart (cheaper than
        # reductions over a trailing dimension of size 2).
        px = pix[..., 0].to(control.dtype) + 0.5                     # (B, N, P, Q)
        py = pix[..., 1].to(control.dtype) + 0.5
        ax, ay = a[..., 0:1], a[..., 1:2]                            # (B, N, P, 1)
        abx, aby = d[..., 0:1] - ax, d[..., 1:2] - ay
        apx, apy = px - ax, py - ay
        h = ((apx * abx + apy * aby) / (abx * abx + aby * aby).clamp_min(1e-12)).clamp(0.0, 1.0)
        ex, ey = apx - h * abx, apy - h * aby
        dist = (ex * ex + ey * ey).clamp_min(1e-12).sqrt()
        cover = (width.view(b, n, 1, 1) * 0.5 + 0.5 - dist).clamp(0.0, 1.0)
        ink = cover * opacity.view(b, n, 1, 1)
        image = control.new_zeros(b, size * size + 1)
        image = image.scatter_reduce(1, index.reshape(b, -1), ink.reshape(b, -1),
                                     reduce="amax", include_self=True)
        return image[:, :-1].view(b, 1, size, size)

    def _measure(self, control: Tensor, width: Tensor, headroom: float):
        """The plan: pieces about ``piece_length / headroom`` long, and the window their pixels
        need if they grow ``headroom`` times longer; and the pieces it cuts (with gradients,
        for the render at hand). Reads the strokes back from the device."""
        with torch.no_grad():
            longest = bezier.control_polygon_length(control).max().item()
        k = int(min(self.max_pieces, max(4, math.ceil(headroom * longest / self.piece_length))))
        a, d = self._pieces(control, k)
        with torch.no_grad():
            reach = (headroom * (d - a).norm(dim=-1).max().item() / 2.0
                     + width.max().item() / 2.0 + 0.5)
        return PiecePlan(k, math.ceil(2.0 * reach) + 1), (a, d)

    def forget_plans(self) -> None:
        """Plan afresh on the next call (for strokes unrelated to the last ones)."""
        self.plans.clear()

    def _plan_for(self, control: Tensor, width: Tensor, size: int):
        """The plan for this call, and its pieces when they were cut to make it."""
        if not self.replan_every:
            return self._measure(control, width, 1.0)
        key = (tuple(control.shape), size)
        entry = self.plans.get(key)
        pieces = None
        if entry is None or entry[1] >= self.replan_every:
            plan, pieces = self._measure(control, width, self.headroom)
            entry = self.plans[key] = [plan, 0]
        entry[1] += 1
        return entry[0], pieces

    @staticmethod
    def _pieces(control: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Cut every cubic segment into ``k`` straight pieces: their ends ``(B, N, S*k, 2)``."""
        b, n = control.shape[:2]
        pts = bezier.evaluate(control, k + 1).view(b, n, -1, k + 1, 2)  # (B, N, S, K+1, 2)
        return pts[..., :-1, :].flatten(2, 3), pts[..., 1:, :].flatten(2, 3)
