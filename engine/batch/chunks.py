"""A long shot split into chunks sketched in parallel, stitched into one sketch (``--chunk N``).

1. **Keyframes.** The shot's frames ``N`` apart are sketched first, as one temporal run
   (``--frames A:B:S*N``): one set of strokes, the same stroke ids on every keyframe.
2. **Chunks.** Chunk ``k`` is sketched from keyframe ``k`` on, starting from the keyframe's
   strokes (``pipeline.Job.first_strokes``) and running ``overlap`` frames into the next
   chunk. The chunks are independent of one another: one Ray task each.
3. **Stitch.** Each chunk's strokes take the ids of the chunk before's strokes they lie
   nearest over the overlap (one assignment; a stroke one chunk re-seeded elsewhere keeps
   its line). Each frame is its chunk's; over the ``overlap`` frames from a seam on, a
   stroke both chunks drew alike is blended, point by point, the weight moving from the
   chunk before (all of it on the seam's frame) to the chunk after, so no stroke jumps at
   the seam: the chunk's first frames, where its optimisation settles the keyframe's
   strokes onto the dense frames, count little. A stroke that one of the two re-seeded
   over the overlap (engine/temporal: a knot, a lost stroke) lies elsewhere in the other:
   blending it would slide it across the subject and show both re-seeds by halves, so it
   switches from the one to the other at once, on the frame where they lie nearest.

The chunks' folders are kept under ``OUT/.dynasketch/chunks`` (each resumes like any sketch).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from ..ink.weight import PIECES, joined

from ..export import _atomic_write, svg_document

FOLDER = os.path.join(".dynasketch", "chunks")


@dataclass
class Piece:
    """One chunk: positions ``first``..``last`` (inclusive) in the shot's frame list."""

    number: int
    first: int
    last: int

    @property
    def name(self) -> str:
        return f"chunk-{self.number:03d}"


def plan(count: int, chunk: int, overlap: int) -> list[Piece]:
    """Chunks of ``chunk`` frames over ``count`` frames, each running ``overlap`` frames on."""
    starts = list(range(0, count, chunk))
    return [Piece(k, s, min(s + chunk + overlap, count) - 1) for k, s in enumerate(starts)]


def frames_text(indices: list[int], first: int, last: int, step: int) -> str:
    """``--frames`` for positions ``first``..``last`` of the shot's source frame ``indices``."""
    return f"{indices[first]}:{indices[last] + 1}:{step}"


def keys_text(indices: list[int], chunk: int, step: int) -> str:
    """``--frames`` of the keyframes: every ``chunk``-th frame of the shot."""
    return f"{indices[0]}:{indices[-1] + 1}:{step * chunk}"


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def strokes_at(sketch: dict, index: int) -> list:
    """The control points ``(N, P, 2)`` of source frame ``index`` in a sketch, as the optimiser
    draws them: sketch.json's strokes are cut in ``ink.weight.PIECES`` for their line weight,
    joined back here (the same curves)."""
    frame = next(f for f in sketch["frames"] if f["index"] == index)
    points = np.array([s["points"] for s in frame["strokes"]], np.float64)
    if points.ndim == 3 and points.shape[1] > 4 and (points.shape[1] - 1) % (3 * PIECES) == 0:
        points = joined(points)
    return points.round(3).tolist()


def blend(before: list[dict], after: list[dict], weights) -> list[dict]:
    """Strokes ``(1 - w) * before + w * after``, stroke by stroke (same ids), ``w`` the
    stroke's weight in ``weights``."""
    out = []
    for a, b, weight in zip(before, after, weights):
        weight = float(weight)
        points = (1 - weight) * np.asarray(a["points"]) + weight * np.asarray(b["points"])
        out.append({**b, "points": [[round(float(x), 3), round(float(y), 3)] for x, y in points],
                    "width": round((1 - weight) * a["width"] + weight * b["width"], 4),
                    "opacity": round((1 - weight) * a["opacity"] + weight * b["opacity"], 4)})
    return out


def seam_weights(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``(F, N)``: how much of the chunk after each stroke takes on each of the ``F`` overlap
    frames. ``before`` and ``after``: the two chunks' control points ``(F + 2, N, P, 2)`` on
    the frame before the seam, the overlap's frames and the first frame after it (where a
    chunk did not draw a frame, the other's stands in: its weight there is 0 or 1 anyway).

    Of the ways to hand a stroke over (an even blend over the first ``s`` frames, or a cut on
    one frame), each stroke takes the one that adds least to its largest move from frame to
    frame beyond the moves of the two chunks themselves. A stroke both chunks drew alike is
    blended over the whole overlap; one that a chunk re-seeded there (engine/temporal: a knot,
    a lost stroke) lies elsewhere in the other, and blending it would slide it across the
    subject and show both re-seeds by halves: it is handed over before the chunks part, or cut
    where they meet."""
    frames = len(before) - 2
    schedules = [np.clip(np.arange(frames) / s, 0, 1) for s in range(frames, 0, -1)]        # blends, longest first
    schedules += [(np.arange(frames) >= n).astype(np.float64) for n in range(frames)]    # cuts
    moves = lambda c: np.linalg.norm(c[1:] - c[:-1], axis=-1).mean(axis=-1)             # (F + 1, N)
    own = np.maximum(np.concatenate([moves(before[:-1]), np.zeros_like(moves(before[:2]))]),
                     np.concatenate([np.zeros_like(moves(after[:2])), moves(after[1:])]))
    best, chosen = None, None
    for schedule in schedules:
        w = np.concatenate([[0.0], schedule, [1.0]])[:, None, None, None]
        added = (moves((1 - w) * before + w * after) - own).max(axis=0)                   # (N,)
        if best is None:
            best, chosen = added, np.repeat(schedule[:, None], len(added), axis=1)
        else:
            better = added < best - 1e-6
            best = np.where(better, added, best)
            chosen[:, better] = schedule[:, None]
    return chosen


def matching_ids(before: list[list[dict]], after: list[list[dict]]) -> list[int]:
    """For each stroke of ``after``, the id of the stroke of ``before`` it follows: the
    assignment that moves the strokes least over the frames both chunks drew (lists of each
    frame's strokes). Strokes a chunk re-seeded on other lines than the chunk before did
    keep one id a line this way."""
    from scipy.optimize import linear_sum_assignment

    a = np.array([[s["points"] for s in frame] for frame in before], np.float64)     # (T, N, P, 2)
    b = np.array([[s["points"] for s in frame] for frame in after], np.float64)
    cost = np.linalg.norm(a[:, :, None] - b[:, None], axis=-1).mean(axis=(0, 3))     # (N before, N after)
    rows, cols = linear_sum_assignment(cost)
    ids = [0] * len(cols)
    for r, c in zip(rows, cols):
        ids[c] = int(r)
    return ids


def relabel(frame: dict, ids: list[int]) -> dict:
    """``frame`` with stroke ``k`` given id ``ids[k]``, in id order."""
    strokes = sorted(({**s, "id": ids[k]} for k, s in enumerate(frame["strokes"])), key=lambda s: s["id"])
    return {**frame, "strokes": strokes}


def stitch(pieces: list[Piece], sketches: list[dict], indices: list[int], overlap: int) -> list[dict]:
    """The shot's frames from the chunks' sketches (in ``pieces`` order): each chunk's strokes
    take the ids of the strokes of the chunk before that they lie on over the overlap, and
    the two are blended there."""
    by_index = [{f["index"]: f for f in s["frames"]} for s in sketches]
    for k in range(1, len(pieces)):
        shared = [i for i in indices[pieces[k].first:pieces[k].first + max(overlap, 1)] if i in by_index[k - 1]]
        if shared:
            ids = matching_ids([by_index[k - 1][i]["strokes"] for i in shared],
                               [by_index[k][i]["strokes"] for i in shared])
            by_index[k] = {i: relabel(f, ids) for i, f in by_index[k].items()}
    weights = {}                                     # k: (overlap frames, strokes) at chunk k's seam
    for k in range(1, len(pieces)):
        first = pieces[k].first
        shared = [i for i in indices[first:first + overlap] if i in by_index[k - 1]]
        if shared:
            window = indices[first - 1:first + len(shared) + 1]      # the frame before, the overlap, the one after
            window += window[-1:] * (len(shared) + 2 - len(window))     # the shot ends in the overlap
            points = lambda frame: [s["points"] for s in frame["strokes"]]
            before = [points(by_index[k - 1].get(i) or by_index[k][i]) for i in window]
            after = [points(by_index[k].get(i) or by_index[k - 1][i]) for i in window]
            weights[k] = seam_weights(np.array(before, np.float64), np.array(after, np.float64))
    frames = []
    for position, index in enumerate(indices):
        k = max(i for i, p in enumerate(pieces) if p.first <= position)
        frame = dict(by_index[k][index])
        into = position - pieces[k].first            # frames since the seam
        if k in weights and into < len(weights[k]):  # 0 on the seam's frame: the chunk before's
            frame["strokes"] = blend(by_index[k - 1][index]["strokes"], frame["strokes"], weights[k][into])
        frames.append(frame)
    return frames


def write_stitched(out: str, header: dict, frames: list[dict]) -> str:
    """``OUT/sketch.json`` and ``OUT/svg/`` of the stitched shot; the sketch's path."""
    os.makedirs(os.path.join(out, "svg"), exist_ok=True)
    for frame in frames:
        svg = svg_document(frame["strokes"], header["width"], header["height"])
        _atomic_write(os.path.join(out, "svg", f"frame_{frame['index']:06d}.svg"), svg.encode())
    path = os.path.join(out, "sketch.json")
    doc = {**header, "complete": True, "frames": frames}
    _atomic_write(path, json.dumps(doc, separators=(",", ":")).encode())
    return path
