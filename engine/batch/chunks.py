"""A long shot split into chunks sketched in parallel, stitched into one sketch (``--chunk N``).

1. **Keyframes.** The shot's frames ``N`` apart are sketched first, as one temporal run
   (``--frames A:B:S*N``): one set of strokes, the same stroke ids on every keyframe.
2. **Chunks.** Chunk ``k`` is sketched from keyframe ``k`` on, starting from the keyframe's
   strokes (``pipeline.Job.first_strokes``) and running ``overlap`` frames into the next
   chunk. The chunks are independent of one another: one Ray task each.
3. **Stitch.** Each chunk's strokes take the ids of the chunk before's strokes they lie
   nearest over the overlap (one assignment; a stroke one chunk re-seeded elsewhere keeps
   its line). Each frame is its chunk's; over the ``overlap`` frames from a seam on the
   strokes of the chunk before and of the chunk after are blended, point by point, the
   weight moving from the one (all of it on the seam's frame) to the other, so no stroke
   jumps at the seam: the chunk's first frames, where its optimisation settles the
   keyframe's strokes onto the dense frames, count little.

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


def blend(before: list[dict], after: list[dict], weight: float) -> list[dict]:
    """Strokes ``(1 - weight) * before + weight * after``, stroke by stroke (same ids)."""
    out = []
    for a, b in zip(before, after):
        points = (1 - weight) * np.asarray(a["points"]) + weight * np.asarray(b["points"])
        out.append({**b, "points": [[round(float(x), 3), round(float(y), 3)] for x, y in points],
                    "width": round((1 - weight) * a["width"] + weight * b["width"], 4),
                    "opacity": round((1 - weight) * a["opacity"] + weight * b["opacity"], 4)})
    return out


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
    frames = []
    for position, index in enumerate(indices):
        k = max(i for i, p in enumerate(pieces) if p.first <= position)
        frame = dict(by_index[k][index])
        into = position - pieces[k].first            # frames since the seam
        if k > 0 and into < overlap and index in by_index[k - 1]:
            weight = into / overlap               # 0 on the seam's frame: the chunk before's
            frame["strokes"] = blend(by_index[k - 1][index]["strokes"], frame["strokes"], weight)
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
