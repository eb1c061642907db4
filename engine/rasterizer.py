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
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from . import bezier


class SplatRasterizer:
    """Batched differentiable rasterizer; see the module docstring."""

    name = "splat"

    def __init__(self, piece_length: float = 1.0, max_pieces: int = 1024):
        self.piece_length = piece_length
        self.max_pieces = max_pieces

    def __call__(self, control: Tensor, width: Tensor, opacity: Tensor, size: int) -> Tensor:
        """Render strokes.

        control: ``(B, N, 3*S+1, 2)`` control points in canvas pixels.
        width, opacity: broadcastable to ``(B, N)``.
        Returns the ink image ``(B, 1, size, size)`` in [0, 1] (1 = full ink).
        """
        b, n = control.shape[:2]
        width = width.to(control.dtype).expand(b, n)
        opacity = opacity.to(control.dtype).expand(b, n)
        a, d = self._pieces(control)                                 # (B, N, P, 2) each
        with torch.no_grad():
            reach = ((d - a).norm(dim=-1).max().item() / 2.0
                     + width.max().item() / 2.0 + 0.5)
            side = math.ceil(2.0 * reach) + 1
            corner = ((a + d) * 0.5 - reach).floor().long()         # (B, N, P, 2)
            offsets = torch.arange(side, device=control.device)
            oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
            window = torch.stack([ox.flatten(), oy.flatten()], -1)   # (Q, 2)
            pix = corner.unsqueeze(-2) + window                      # (B, N, P, Q, 2)
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

    def _pieces(self, control: Tensor) -> tuple[Tensor, Tensor]:
        """Cut every stroke into straight pieces about ``piece_length`` long."""
        b, n = control.shape[:2]
        with torch.no_grad():
            longest = bezier.control_polygon_length(control).max().item()
            k = int(min(self.max_pieces, max(4, math.ceil(longest / self.piece_length))))
        t = torch.linspace(0.0, 1.0, k + 1, device=control.device)
        pts = bezier.evaluate(control, t).view(b, n, -1, k + 1, 2)  # (B, N, S, K+1, 2)
        return pts[..., :-1, :].flatten(2, 3), pts[..., 1:, :].flatten(2, 3)
