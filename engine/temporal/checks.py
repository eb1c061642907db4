"""Which carried strokes to re-seed (see the package docstring). Strokes are ``(T, N, P, 2)``
control points on ``T`` frames; ``lines`` are those frames' ``engine.lines.Lines``. Every check
is batched over frames and strokes."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .. import bezier

SAMPLES = 16                 # points along a stroke for the geometric checks
CROSSED = 2                  # a stroke crossing others (or itself) this often is tangled
GROWTH = 1.3                 # a stroke longer than its keyframe length x the subject's growth x this
TIPS = 2                     # pieces (of SAMPLES - 1) at each end of a stroke where meeting others is no knot


def lengths(strokes: Tensor) -> Tensor:
    """Each stroke's length ``(..., N)``, canvas px."""
    return bezier.lengths(strokes, SAMPLES)


def duplicates(strokes: Tensor, lines: list) -> Tensor:
    """Which strokes ``(T, N)`` mostly lie on another, longer stroke (over half their points
    within 3% of the subject's diagonal of it): two strokes drawn over one line (a thin part
    such as a string or a strap carries one stroke), which the tracks and the chamfer pull
    can make."""
    pts = bezier.evaluate_along(strokes.detach(), SAMPLES)                     # (T, N, S, 2)
    t, n, m, _ = pts.shape
    reach = torch.tensor([max(1.5, 0.03 * item.diagonal) for item in lines], device=pts.device)
    d = torch.cdist(pts.flatten(1, 2), pts.flatten(1, 2)).view(t, n, m, n, m).amin(-1)  # (T,N,S,N)
    share = (d < reach[:, None, None, None]).float().mean(2)                 # (T, N, N): i on j
    share = share * (1 - torch.eye(n, device=pts.device))
    length = lengths(strokes.detach())                                        # (T, N)
    index = torch.arange(n, device=pts.device)
    shorter = (length[:, :, None] < length[:, None, :]) | (
        (length[:, :, None] == length[:, None, :]) & (index[:, None] > index[None, :]))
    return ((share > 0.5) & shorter).any(-1)


def off_lines(samples: Tensor, lines: list, distance: float) -> tuple[Tensor, Tensor]:
    """Which strokes (their tracked points ``samples`` ``(T, N, M, 2)``) lie off their frame's
    lines ``(T, N)`` (the points' mean distance to the lines over ``distance`` times the
    subject's diagonal, ``line_distance``), and which lie mostly outside the subject ``(T, N)``."""
    pts = samples.detach().cpu().numpy()
    outside = np.zeros(pts.shape[:2], bool)
    for t, item in enumerate(lines):
        xs, ys = _pixels(pts[t], item)
        outside[t] = item.subject[ys, xs].mean(-1) < 0.5
    return line_distance(samples, lines) > distance, torch.from_numpy(outside).to(samples.device)


def _pixels(pts: np.ndarray, item) -> tuple[np.ndarray, np.ndarray]:
    """The pixel each point ``(..., 2)`` falls on in ``item``'s canvas, clipped to it."""
    h, w = item.image.shape
    return np.clip(pts[..., 0].astype(int), 0, w - 1), np.clip(pts[..., 1].astype(int), 0, h - 1)


def crossings(strokes: Tensor, ends: int = 0) -> Tensor:
    """How often each stroke ``(T, N)`` properly crosses the others and itself (adjacent pieces
    of one stroke and a closed stroke's meeting ends excepted): the per-frame drawing has
    almost none; strokes the tracks carry into a knot have several. With ``ends``, crossings
    of another stroke within that many pieces of either stroke's end are not counted: strokes
    on lines that meet (a fan of strings at the pilot, a T-junction) overlap there a little."""
    pts = bezier.evaluate_along(strokes.detach(), SAMPLES)                     # (T, N, S, 2)
    t, n, s, _ = pts.shape
    a = pts[:, :, :-1].reshape(t, -1, 2)                                        # (T, K, 2) segment starts
    b = pts[:, :, 1:].reshape(t, -1, 2)
    owner = torch.arange(n, device=pts.device).repeat_interleave(s - 1)
    order = torch.arange(s - 1, device=pts.device).repeat(n)

    def side(p, q, r):                       # the turn p -> q -> r for every pair of segments
        return torch.sign((q[:, :, None, 0] - p[:, :, None, 0]) * (r[:, None, :, 1] - p[:, :, None, 1])
                          - (q[:, :, None, 1] - p[:, :, None, 1]) * (r[:, None, :, 0] - p[:, :, None, 0]))

    d1, d2 = side(a, b, a), side(a, b, b)
    proper = (d1 * d2 < 0) & (d1 * d2 < 0).transpose(1, 2)                    # (T, K, K)
    same = owner[:, None] == owner[None, :]
    gap = (order[:, None] - order[None, :]).abs()
    near = same & ((gap <= 1) | (gap >= s - 2))                               # neighbours; closed ends
    if ends:                      # strokes that meet where lines meet cross at their ends
        tip = (order < ends) | (order >= s - 1 - ends)
        near = near | (~same & (tip[:, None] | tip[None, :]))
    hits = (proper & ~near).float()
    per_segment = hits.sum(-1)                                                  # (T, K)
    return per_segment.view(t, n, s - 1).sum(-1)


def scaled_anchor(anchor: Tensor, anchor_size: Tensor, lines: list) -> Tensor:
    """Each stroke's keyframe length ``anchor`` ``(N,)``, set when the subject's diagonal was
    ``anchor_size`` ``(N,)``, scaled with the subject's size on each frame ``(T, N)``: strokes
    follow the subject's growth, not more (a flicker of the mask's size is held to 0.5-2x)."""
    size = torch.tensor([max(item.diagonal, 1.0) for item in lines], device=anchor.device, dtype=anchor.dtype)
    ratio = (size[:, None] / anchor_size.clamp_min(1.0)[None]).clamp(0.5, 2.0)
    return anchor[None] * ratio


def lengthened(strokes: Tensor, allowed: Tensor) -> Tensor:
    """Which strokes ``(T, N)`` are more than ``GROWTH`` times their ``allowed`` length
    (``scaled_anchor``)."""
    return lengths(strokes.detach()) > GROWTH * allowed


KNOT_DISTANCE = 0.02         # a stroke crossing another this far (x the subject) off the lines ...
OFF_DISTANCE = 0.04          # ... or any stroke this far off: re-seeded after the optimisation


def line_distance(samples: Tensor, lines: list) -> Tensor:
    """Each stroke's mean distance ``(T, N)`` from its points ``samples`` ``(T, N, M, 2)`` to its
    frame's lines, as a share of the subject's diagonal (0 on a frame with no lines)."""
    pts = samples.detach().cpu().numpy()
    out = np.zeros(pts.shape[:2], np.float32)
    for t, item in enumerate(lines):
        if item.empty:
            continue
        xs, ys = _pixels(pts[t], item)
        out[t] = item.distance()[ys, xs].mean(-1) / max(item.diagonal, 1.0)
    return torch.from_numpy(out).to(samples.device)


ALONG = 0.35                 # a stroke with less of its length along the lines lies across them
TURNED = np.radians(30)      # ... "along": near a line and within this angle of its direction


def across(samples: Tensor, lines: list) -> Tensor:
    """Which strokes (their points ``samples`` ``(T, N, M, 2)``) lie across the lines rather than
    along them ``(T, N)``: under ``ALONG`` of their pieces (between neighbouring points) are
    within a line's reach (3% of the subject's diagonal) and within ``TURNED`` of its
    direction. Where lines lie close together (a fan of strings, hatching) a stroke can be
    near lines everywhere and still draw none of them."""
    pts = samples.detach().cpu().numpy()
    out = np.zeros(pts.shape[:2], bool)
    for t, item in enumerate(lines):
        if item.empty:
            continue
        mid = (pts[t, :, 1:] + pts[t, :, :-1]) / 2                           # (N, M-1, 2)
        step = pts[t, :, 1:] - pts[t, :, :-1]
        xs, ys = _pixels(mid, item)
        angle = np.arctan2(step[..., 1], step[..., 0])
        turn = np.abs((angle - item.direction()[ys, xs] + np.pi / 2) % np.pi - np.pi / 2)
        along = (item.distance()[ys, xs] <= max(1.5, 0.03 * item.diagonal)) & (turn <= TURNED)
        out[t] = along.mean(-1) < ALONG
    return torch.from_numpy(out).to(samples.device)


def knotted(samples: Tensor, strokes: Tensor, lines: list, doubled_before: Tensor | None = None) -> Tensor:
    """After a window's optimisation, which strokes ``(T, N)`` to re-seed: those that cross
    another stroke (or themselves) while lying ``KNOT_DISTANCE`` off the lines, and those
    ``OFF_DISTANCE`` off them; the drawing of each frame on its own has neither. With
    ``doubled_before`` (``duplicates`` of the strokes on the frame before the window, ``(1, N)``),
    also those it drew over another stroke's line (a string drawn twice), but not two that
    shared a line there already (where lines converge, as a fan of strings at the pilot)."""
    distance = line_distance(samples, lines)
    out = ((crossings(strokes) >= 1) & (distance > KNOT_DISTANCE)) | (distance > OFF_DISTANCE)
    if doubled_before is not None:
        out = out | (duplicates(strokes, lines) & ~doubled_before)
    return out
