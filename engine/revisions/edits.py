"""Reading and checking an edit file (docs/CONTRACT.md, "Revisions"), before the folder is touched."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from ..errors import EngineError


@dataclass
class Edits:
    path: str
    frame: int                       # the source frame index the artist edited
    strokes: list[dict]              # as given: id, points, and optionally widths, locked, width, opacity
    source: str | None               # the clip it is of (sketch.json's source.path), when given
    digest: str                      # the same edit gives the same digest

    @property
    def ids(self) -> list[int]:
        return [s["id"] for s in self.strokes]


def _fail(path: str, why: str) -> EngineError:
    return EngineError(f"--revise {path}: {why}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and abs(value) != float("inf")


def _check_stroke(path: str, k: int, stroke) -> dict:
    if not isinstance(stroke, dict):
        raise _fail(path, f"stroke {k} is not an object with an id and points")
    sid = stroke.get("id")
    if not isinstance(sid, int) or isinstance(sid, bool):
        raise _fail(path, f"stroke {k} has no whole-number id")
    points = stroke.get("points")
    if not isinstance(points, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(map(_number, p)) for p in points):
        raise _fail(path, f"stroke {sid}: points must be a list of [x, y] numbers")
    if len(points) < 4:
        raise _fail(path, f"stroke {sid} has {len(points)} points; a stroke needs at least 4 "
                          "(cubic Bezier control points p0 c1 c2 p1)")
    if (len(points) - 1) % 3:
        raise _fail(path, f"stroke {sid} has {len(points)} points; cubic Bezier control points "
                          "come as 3*S+1 (p0 c1 c2 p1 c1 c2 p2 ...)")
    widths = stroke.get("widths")
    if widths is not None and (not isinstance(widths, list) or len(widths) != (len(points) - 1) // 3 + 1
                               or not all(_number(w) and w >= 0 for w in widths)):
        raise _fail(path, f"stroke {sid}: widths needs one width (0 or more) per on-curve point")
    if "locked" in stroke and not isinstance(stroke["locked"], bool):
        raise _fail(path, f"stroke {sid}: locked is true or false")
    for key in ("width", "opacity"):
        if key in stroke and not (_number(stroke[key]) and stroke[key] >= 0):
            raise _fail(path, f"stroke {sid}: {key} must be a number of 0 or more")
    return stroke


def read_edits(path: str) -> Edits:
    """The edit file at ``path``, checked: one line (exit 2) for anything wrong in it."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise _fail(path, "not found (check the path)") from None
    except (OSError, ValueError) as exc:
        raise _fail(path, f"not a readable edit file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("frame"), int) or isinstance(doc.get("frame"), bool):
        raise _fail(path, 'needs {"frame": N, "strokes": [...]}, N a source frame index of the sketch')
    strokes = doc.get("strokes")
    if not isinstance(strokes, list) or not strokes:
        raise _fail(path, "holds no strokes; an edit keeps at least one stroke")
    strokes = [_check_stroke(path, k, s) for k, s in enumerate(strokes)]
    seen: set[int] = set()
    for s in strokes:
        if s["id"] in seen:
            raise _fail(path, f"stroke id {s['id']} is given twice; each stroke needs an id of its own")
        seen.add(s["id"])
    source = doc.get("source")
    source_path = source.get("path") if isinstance(source, dict) else source if isinstance(source, str) else None
    body = json.dumps({"frame": doc["frame"], "strokes": strokes}, sort_keys=True, separators=(",", ":"))
    return Edits(os.path.abspath(path), doc["frame"], strokes, source_path,
                 hashlib.sha256(body.encode()).hexdigest()[:16])


def check_before_the_run(out: str, edits: Edits, source_path: str, overwrite: bool) -> None:
    """What can be told from ``out``'s ``sketch.json`` before the run takes the folder: an
    earlier run is there, the edit is of this clip and of a frame the sketch has."""
    if overwrite:
        raise EngineError("--revise goes on from the sketch in --out: leave out --overwrite")
    sketch = os.path.join(os.path.abspath(out), "sketch.json")
    if not os.path.isfile(sketch):
        raise EngineError(f"--out {os.path.abspath(out)}: holds no earlier run to revise (no sketch.json); "
                          "sketch the clip into it first, then revise")
    if edits.source is not None and os.path.abspath(edits.source) != source_path:
        raise _fail(edits.path, f"is an edit of {edits.source}, not of {source_path}; revise that clip's sketch")
    try:
        with open(sketch, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return                       # a damaged sketch.json: the folder check after says so, or rebuilds it
    if doc.get("source", {}).get("path") not in (None, source_path):
        raise EngineError(f"--out {os.path.abspath(out)}: holds a sketch of {doc['source']['path']}, "
                          f"not of {source_path}; revise in that clip's folder")
    check_frame(edits, [f.get("index") for f in doc.get("frames", [])])


def check_frame(edits: Edits, indices: list[int]) -> None:
    if edits.frame not in indices:
        have = f"frames {indices[0]} to {indices[-1]}" if indices else "no frames yet"
        raise _fail(edits.path, f"is an edit of frame {edits.frame}, which the sketch does not have "
                                f"(it has {have}); edit one of its frames")
