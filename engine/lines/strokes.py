"""Choosing N strokes from a frame's lines, by salience.

The silhouette first: its runs are fitted in as many cubics as its share of the strokes
(``silhouette_share`` of N, all N when there are no interior lines), so a few strokes are
still the outline. Then the inner marks (eyes, wheels, a logo: ``marks``), one closed
stroke each, ``mark_share(N)`` of them: none of 4 strokes, 1 of 8, 3 of 16, 7 of 32. Then the
interior lines, longest and highest-contrast first, each path fitted with Schneider's
algorithm and its pieces taken while they are not near-duplicates of strokes already
chosen. ``line_strokes`` returns fewer than N strokes only when the frame has too few
lines; the caller fills the rest. Re-seeding (strokes already drawn to ``avoid``), the
outline is cut as for a keyframe and each piece cut down to its longest stretch not drawn
yet, so a new stroke fills the gap the stroke it replaces left.
"""
from __future__ import annotations

import numpy as np

from .extract import Lines
from .marks import loop_cubic
from .vectorise import fit_cubics, fit_in, path_length, prune_and_join, split_cubic, sub_cubic, trace_paths

TRIM = 0.05            # of each piece's parameter left off at either end
GAP_SAMPLES = 33       # a re-seeded outline piece is cut to its longest stretch not drawn, sampled so,
GAP_MIN_DRAWN = 4      # ... where at least this many samples in a row lie on a drawn stroke
RESEED_LENGTH = 0.5    # a re-seed takes pieces at least this share of the kept strokes' median length first
COARSE = 0.03          # 16 strokes' outline pieces stay this close to it (x the subject diagonal)


def mark_share(count: int) -> int:
    """How many of ``count`` strokes go to inner marks: 4 strokes stay the outline."""
    return max(0, (count - 4) // 4)


def _samples(c: np.ndarray, count: int = 16) -> np.ndarray:
    t = np.linspace(0.0, 1.0, count)
    s = 1 - t
    return ((s ** 3)[:, None] * c[0] + (3 * s * s * t)[:, None] * c[1]
            + (3 * s * t * t)[:, None] * c[2] + (t ** 3)[:, None] * c[3])


def _polyline_samples(control: np.ndarray, count: int = 16) -> np.ndarray:
    """Points along a stroke of joined cubics ``(3 * S + 1, 2)``."""
    pieces = [control[k:k + 4] for k in range(0, len(control) - 1, 3)]
    return np.concatenate([_samples(c, max(4, count // len(pieces))) for c in pieces])


def _nearest(points: np.ndarray, against: list[np.ndarray]) -> np.ndarray:
    """Each of ``points`` ``(K, 2)``'s distance to the nearest point of the ``against`` arrays."""
    return np.linalg.norm(points[:, None] - np.concatenate(against)[None], axis=-1).min(1)


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the runs of True in ``flags`` start and stop (exclusive)."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _cubic_length(c: np.ndarray) -> float:
    return path_length(_samples(c))


def interior_paths(lines: Lines) -> list[tuple[np.ndarray, float]]:
    """The interior centrelines as joined paths with their salience (length x contrast),
    most salient first."""
    if lines.interior is None or not lines.interior.any():
        return []
    paths, ends = trace_paths(lines.interior)
    paths = prune_and_join(paths, ends, spur=0.04 * lines.diagonal)
    out = []
    for p in paths:
        length = path_length(p)
        if length < 0.08 * lines.diagonal:
            continue
        xs, ys = p[:, 0].astype(int), p[:, 1].astype(int)
        contrast = float(lines.strength[ys, xs].mean()) if lines.strength is not None else 1.0
        out.append((p, length * contrast))
    return sorted(out, key=lambda t: -t[1])


def smooth_run(run: np.ndarray, sigma: float) -> np.ndarray:
    """A silhouette run with its pixel steps smoothed away (Gaussian of ``sigma`` points;
    around a closed run, the smoothing wraps)."""
    if sigma <= 0 or len(run) < 5:
        return run
    closed = np.allclose(run[0], run[-1])
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    body = run[:-1] if closed else run
    padded = np.pad(body, ((radius, radius), (0, 0)), mode="wrap" if closed else "edge")
    out = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], 1)
    return np.vstack([out, out[:1]]) if closed else out


def silhouette_cubics(lines: Lines, pieces: int, coarse: float = COARSE) -> list[np.ndarray]:
    """The silhouette in at most ``pieces`` cubics, shared among its runs by length: each
    run, smoothed, fitted finely (1% of the subject's diagonal) and merged where one cubic
    still fits within ``coarse`` of it (``vectorise.fit_in``), so straight stretches take one
    stroke and detailed ones several."""
    d = lines.diagonal
    runs = [smooth_run(r, max(1.0, 0.01 * d)) for r in lines.silhouette if path_length(r) >= 0.05 * d]
    if not runs or pieces <= 0:
        return []
    lengths = np.array([path_length(r) for r in runs])
    share = np.maximum(1, np.round(pieces * lengths / lengths.sum())).astype(int)
    while share.sum() > pieces and (share > 1).any():
        share[np.argmax(share)] -= 1
    out = []
    for run, k in zip(runs, share):
        out += fit_in(run, int(k), max(0.75, 0.01 * d), coarse * d)
    return sorted(out, key=lambda c: -_cubic_length(c))[:pieces]


def line_strokes(lines: Lines, count: int, segments: int = 1, silhouette_share: float = 0.7,
                 duplicate: float | None = None, avoid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` strokes ``(K, 3 * segments + 1, 2)`` on the frame's lines, and whether
    each is a silhouette piece ``(K,)``. ``avoid`` ``(J, P, 2)``: strokes already drawn
    (re-seeding): pieces that duplicate them are passed over, and pieces at least
    ``RESEED_LENGTH`` of their median length are taken before shorter ones."""
    if lines.empty:
        return np.zeros((0, 3 * segments + 1, 2)), np.zeros(0, bool)
    duplicate = duplicate if duplicate is not None else max(1.5, 0.03 * lines.diagonal)
    inner = interior_paths(lines)
    shortest = 0.04 * lines.diagonal
    drawn = [] if avoid is None or not len(avoid) else [_polyline_samples(a) for a in avoid]
    marks = [loop_cubic(m.outline) for m in lines.marks[:mark_share(count)]]
    marks = [c for c in marks if _cubic_length(c) >= shortest]
    budget = count if not (inner or marks) else min(count - len(marks),
                                                    max(min(count, 4), round(silhouette_share * count)))
    taken = list(drawn)

    def fresh(c: np.ndarray, against: list) -> bool:
        if not against:
            return True
        return float(np.mean(_nearest(_samples(c), against) < duplicate)) < 0.5

    def gap(c: np.ndarray) -> np.ndarray | None:
        """The longest stretch of ``c`` that no drawn stroke already covers, as a cubic."""
        near = _nearest(_samples(c, GAP_SAMPLES), drawn) < duplicate
        for a, b in zip(*_runs(near)):
            if b - a < GAP_MIN_DRAWN:        # a neighbour's end touching it: no stretch drawn
                near[a:b] = False
        starts, stops = _runs(~near)
        if not len(starts):
            return None
        k = int(np.argmax(stops - starts))
        return sub_cubic(c, starts[k] / (GAP_SAMPLES - 1), (stops[k] - 1) / (GAP_SAMPLES - 1))

    chosen, kinds = [], []
    if drawn:                              # re-seeding: the marks not drawn, then the whole outline
        for c in marks:
            if fresh(c, drawn):
                chosen.append(c)
                kinds.append(False)
                taken.append(_samples(c))
        marks = []
    coarse = COARSE * max(1.0, 16.0 / count) ** 0.5   # fewer strokes: a simpler outline, still whole
    outline = silhouette_cubics(lines, budget, coarse)
    if drawn:                              # re-seeding: each piece's longest stretch not drawn yet
        outline = sorted((g for g in map(gap, outline) if g is not None), key=lambda c: -_cubic_length(c))
    fitted = {}

    def inner_pieces(i: int) -> list:
        if i not in fitted:
            fitted[i] = sorted(fit_cubics(inner[i][0], max(1.0, 0.01 * lines.diagonal)),
                               key=lambda c: -_cubic_length(c))
        return fitted[i]

    # a re-seed takes long pieces first (outline, then inner lines): a short stroke stays short,
    # its length being its anchor; short pieces only where nothing longer is free
    floors = [shortest]
    if drawn:
        floors.insert(0, max(shortest, RESEED_LENGTH * float(np.median([path_length(d) for d in drawn]))))
    # a keyframe's outline pieces meet end to end: only what is drawn already can duplicate
    # them; a re-seed's second, shorter pass must not take a piece of its first again
    for floor in floors:
        for c in outline:
            if len(chosen) < count and _cubic_length(c) >= floor and fresh(c, taken if drawn else []):
                chosen.append(c)
                kinds.append(True)
                taken.append(_samples(c))
        for c in marks:                    # a keyframe's marks (a re-seed took its marks above)
            if len(chosen) < count and fresh(c, taken):
                chosen.append(c)
                kinds.append(False)
                taken.append(_samples(c))
        for i in range(len(inner)):
            if len(chosen) >= count:
                break
            for c in inner_pieces(i):
                if len(chosen) >= count:
                    break
                if _cubic_length(c) >= floor and fresh(c, taken):
                    chosen.append(c)
                    kinds.append(False)
                    taken.append(_samples(c))
    if len(chosen) < count and lines.silhouette and not drawn:   # few interior lines: more outline
        more = [c for c in silhouette_cubics(lines, count - len(chosen) + kinds.count(True), coarse)
                if _cubic_length(c) >= shortest]
        if len(more) > kinds.count(True):
            inside = [c for c, k in zip(chosen, kinds) if not k]
            outer = more[:count - len(inside)]
            chosen, kinds = outer + inside, [True] * len(outer) + [False] * len(inside)
    # a little short of each end: pieces that meet end to end would cross once optimised
    strokes = np.array([split_cubic(sub_cubic(c, TRIM, 1 - TRIM), segments)
                        for c in chosen]).reshape(-1, 3 * segments + 1, 2)
    return strokes, np.array(kinds, bool)
