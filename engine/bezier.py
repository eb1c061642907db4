"""Cubic Bezier strokes as batched tensors.

A stroke with S cubic segments has 3*S+1 control points ``p0, c1, c2, p1, c1, c2, p2 ...``.
Control tensors have shape ``(..., 3*S+1, 2)``; every function here is batched over the
leading dimensions (frames, seeds, strokes) and differentiable.
"""
from __future__ import annotations

import functools

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
    return control[..., _segment_index((n - 1) // 3, control.device), :]


def evaluate(control: Tensor, t: Tensor | int) -> Tensor:
    """Points on the curve at per-segment parameters ``t`` ``(K,)`` in [0, 1], or at ``t``
    evenly spaced ones from 0 to 1 (their weights made once per device).

    Returns ``(..., S*K, 2)``: K points for each of the S segments, segment after segment.
    """
    seg = segments(control)                                   # (..., S, 4, 2)
    basis = _even_basis(t, control.device, control.dtype) if isinstance(t, int) \
        else cubic_basis(t.to(control.dtype))                 # (K, 4)
    pts = torch.einsum("kc,...scd->...skd", basis, seg)       # (..., S, K, 2)
    return pts.flatten(-3, -2)


def evaluate_along(control: Tensor, u: Tensor | int) -> Tensor:
    """Points at global parameters ``u`` ``(M,)`` in [0, 1] over the whole stroke, or at ``u``
    evenly spaced ones from 0 to 1 (their segments and weights made once per device).

    ``u`` runs over all S segments (segment ``floor(u*S)``); returns ``(..., M, 2)``.
    """
    seg = segments(control)                                   # (..., S, 4, 2)
    along = _even_along if isinstance(u, int) else _along
    which, basis = along(u, seg.shape[-3], control.device, control.dtype)   # (M,), (M, 4)
    chosen = seg[..., which, :, :]                            # (..., M, 4, 2)
    return torch.einsum("mc,...mcd->...md", basis, chosen)


def _along(u: Tensor, s: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Each parameter's segment ``(M,)`` and cubic weights ``(M, 4)`` in it."""
    pos = (u.clamp(0, 1) * s).to(dtype)
    which = pos.floor().clamp(max=s - 1).long()
    return which, cubic_basis(pos - which.to(dtype))


# Shapes that every optimisation step uses again: made once per device, never written to (an
# eager step on a GPU is bound by launching its small kernels, and these were a tenth of them).
@functools.lru_cache(maxsize=None)
def _segment_index(s: int, device: torch.device) -> Tensor:
    """Control-point indices of S segments ``(S, 4)``: 0 1 2 3, 3 4 5 6, ..."""
    return torch.arange(s, device=device)[:, None] * 3 + torch.arange(4, device=device)[None, :]


@functools.lru_cache(maxsize=None)
def _even_basis(k: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    return cubic_basis(torch.linspace(0.0, 1.0, k, device=device, dtype=dtype))


@functools.lru_cache(maxsize=None)
def _even_along(m: int, s: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return _along(torch.linspace(0.0, 1.0, m, device=device, dtype=dtype), s, device, dtype)


def lengths(control: Tensor, samples: int = 16) -> Tensor:
    """Each curve's length ``(...)``, along ``samples`` points evenly spaced in arc length."""
    pts = evaluate_along(control, samples)
    return (pts[..., 1:, :] - pts[..., :-1, :]).norm(dim=-1).sum(-1)


def control_polygon_length(control: Tensor) -> Tensor:
    """Length of the control polygon ``(...)``: an upper bound of the curve's length."""
    return (control[..., 1:, :] - control[..., :-1, :]).norm(dim=-1).sum(-1)
