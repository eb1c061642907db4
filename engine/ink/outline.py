"""A variable-width stroke as a filled outline, so that any SVG viewer shows its weight.

SVG's ``stroke-width`` is one number per path; a stroke whose width changes along it is
drawn instead as the shape it covers: the centre line offset by half the width to each
side, closed by round caps, filled. A frame's strokes are outlined together (``outlines``).
"""
from __future__ import annotations

import numpy as np

from .weight import sample

PER_SEGMENT = 6      # outline points per cubic segment (a quarter of the optimiser's cubic)
CAP = 5              # points on each round cap


def outlines(points, widths, per_segment: int = PER_SEGMENT) -> np.ndarray:
    """The closed outlines ``(N, K, 2)`` of strokes with control points ``(N, 3S+1, 2)`` and
    a width per on-curve point ``(N, S+1)`` (linear between them)."""
    control = np.asarray(points, dtype=np.float64)
    w = np.asarray(widths, dtype=np.float64)
    pts = sample(control, per_segment)                               # (N, M, 2)
    m = pts.shape[1]
    along = np.arange(m) / per_segment                               # in on-curve points
    lo = np.minimum(along.astype(int), w.shape[1] - 2)
    half = 0.5 * (w[:, lo] + (w[:, lo + 1] - w[:, lo]) * (along - lo))    # (N, M)
    tangent = np.gradient(pts, axis=1)
    length = np.linalg.norm(tangent, axis=-1, keepdims=True)
    tangent = np.where(length > 1e-9, tangent / np.maximum(length, 1e-9), [1.0, 0.0])
    normal = np.stack([-tangent[..., 1], tangent[..., 0]], -1)
    left = pts + normal * half[..., None]
    right = pts - normal * half[..., None]
    theta = np.linspace(0.0, np.pi, CAP + 2)[1:-1, None]              # (CAP, 1)
    end = pts[:, -1:] + half[:, -1:, None] * (np.cos(theta) * normal[:, -1:] + np.sin(theta) * tangent[:, -1:])
    start = pts[:, :1] + half[:, :1, None] * (-np.cos(theta) * normal[:, :1] - np.sin(theta) * tangent[:, :1])
    return np.concatenate([left, end, right[:, ::-1], start], axis=1)


def outline(points, widths, per_segment: int = PER_SEGMENT) -> np.ndarray:
    """The closed outline ``(K, 2)`` of one stroke (``outlines`` of one)."""
    return outlines(np.asarray(points)[None], np.asarray(widths)[None], per_segment)[0]


def path_data(ring) -> str:
    """The ``d`` of a filled SVG path around the outline ``ring`` ``(K, 2)``."""
    return "M " + " L ".join(f"{x} {y}" for x, y in np.round(ring, 2).tolist()) + " Z"


def outline_paths(strokes: list[dict]) -> dict[int, str]:
    """The ``d`` of each stroke with ``widths`` (by id), strokes of one length outlined together."""
    groups: dict[int, list[dict]] = {}
    for s in strokes:
        if "widths" in s:
            groups.setdefault(len(s["points"]), []).append(s)
    paths = {}
    for group in groups.values():
        rings = outlines([s["points"] for s in group], [s["widths"] for s in group])
        paths.update({s["id"]: path_data(ring) for s, ring in zip(group, rings)})
    return paths
