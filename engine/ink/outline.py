"""A variable-width stroke as a filled outline, so that any SVG viewer shows its weight.

SVG's ``stroke-width`` is one number per path; a stroke whose width changes along it is
drawn instead as the shape it covers: the centre line offset by half the width to each
side, closed by round caps, filled.
"""
from __future__ import annotations

import numpy as np

from .weight import sample

PER_SEGMENT = 8      # outline points per cubic segment
CAP = 6              # points on each round cap


def outline(points, widths, per_segment: int = PER_SEGMENT) -> np.ndarray:
    """The closed outline ``(K, 2)`` of a stroke: control points ``(3S+1, 2)``, a width per
    on-curve point ``(S+1,)`` (linear between them)."""
    control = np.asarray(points, dtype=np.float64)[None]
    pts = sample(control, per_segment)[0]                           # (M, 2)
    w = np.asarray(widths, dtype=np.float64)
    s = len(w) - 1
    half = 0.5 * np.interp(np.arange(len(pts)) / per_segment, np.arange(s + 1), w)
    tangent = np.gradient(pts, axis=0)
    length = np.linalg.norm(tangent, axis=-1, keepdims=True)
    tangent = np.where(length > 1e-9, tangent / np.maximum(length, 1e-9), [1.0, 0.0])
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], -1)
    left = pts + normal * half[:, None]
    right = pts - normal * half[:, None]
    theta = np.linspace(0.0, np.pi, CAP + 2)[1:-1, None]
    end = pts[-1] + half[-1] * (np.cos(theta) * normal[-1] + np.sin(theta) * tangent[-1])
    start = pts[0] + half[0] * (-np.cos(theta) * normal[0] - np.sin(theta) * tangent[0])
    return np.concatenate([left, end, right[::-1], start])


def outline_path(points, widths) -> str:
    """The ``d`` of a filled SVG path covering the stroke."""
    ring = outline(points, widths)
    return "M " + " L ".join(f"{x:.2f} {y:.2f}" for x, y in ring) + " Z"
