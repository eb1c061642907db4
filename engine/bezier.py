"""Cubic Bezier strokes as batched tensors.

A stroke with S cubic segments has 3*S+1 control points ``p0, c1, c2, p1, c1, c2, p2 ...``.
Control tensors have shape ``(..., 3*S+1, 2)``; every function here is batched over the
leading dimensions (frames, seeds, strokes) and differentiable.
"""
from __future__ import annotations

import torch
from torch import Tensor


def cubic_basis(t: Tensor) -> Tensor:
    """Bernstein weights ``(K, 4)`` of a cubic at parameters ``t`` ``(K,)``."""
    s = 1.0 - t
    return torch.stack([s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t], dim=-1)


def segments(control: Tensor) -> Tensor:
    """Split ``(..., 3*S+1, 2)`` control points into ``(..., S, 4, 2)`` cubic segments."""
    n = control.shape[-2]
    if (n - 1) % 3 != 0 or n < 4:
        raise ValueError(f"a cubic Bezier needs 3*S+1 control points, got {n}")
    s = (n - 1) // 3
    idx = (torch.arange(s, device=control.device)[:, None] * 3
           + torch.arange(4, device=control.device)[None, :])
    return control[..., idx, :]


def evaluate(control: Tensor, t: Tensor) -> Tensor:
    """Points on the curve at per-segment parameters ``t`` ``(K,)`` in [0, 1].

    Returns ``(..., S*K, 2)``: K points for each of the S segments, segment after segment.
    """
    seg = segments(control)                                   # (..., S, 4, 2)
    basis = cubic_basis(t.to(control.dtype))                  # (K, 4)
    pts = torch.einsum("kc,...scd->...skd", basis, seg)       # (..., S, K, 2)
    return pts.flatten(-3, -2)


def evaluate_along(control: Tensor, u: Tensor) -> Tensor:
    """Points at global parameters ``u`` ``(M,)`` in [0, 1] over the whole stroke.

    ``u`` runs over all S segments (segment ``floor(u*S)``); returns ``(..., M, 2)``.
    """
    seg = segments(control)                                   # (..., S, 4, 2)
    s = seg.shape[-3]
    pos = (u.clamp(0, 1) * s).to(control.dtype)
    which = pos.floor().clamp(max=s - 1).long()              # (M,)
    local = pos - which.to(pos.dtype)
    basis = cubic_basis(local)                                # (M, 4)
    chosen = seg[..., which, :, :]                            # (..., M, 4, 2)
    return torch.einsum("mc,...mcd->...md", basis, chosen)


def control_polygon_length(control: Tensor) -> Tensor:
    """Length of the control polygon ``(...)``: an upper bound of the curve's length."""
    return (control[..., 1:, :] - control[..., :-1, :]).norm(dim=-1).sum(-1)
