"""Reading ``sketch.json`` (docs/CONTRACT.md) into plain Python objects, with validation."""
from __future__ import annotations

import json
from dataclasses import dataclass

FORMAT = "dynasketch.sketch"
SUPPORTED_VERSIONS = (1, 2)      # 2: with revisions (docs/CONTRACT.md)


class SketchFileError(Exception):
    """The file is missing, not JSON, or breaks the contract; the message says which."""


@dataclass
class Stroke:
    id: int
    points: list           # [[x, y], ...] 3*S+1 cubic control points, source pixels, y down
    width: float
    opacity: float
    widths: list | None = None   # a width per on-curve point (line weight); None: ``width`` all along
    colour: list | None = None   # the footage's colour under the stroke, sRGB 0-1; None: not given
    locked: bool = False   # kept as drawn by the artist's revision (docs/CONTRACT.md, Revisions)


@dataclass
class Frame:
    index: int             # source frame index
    strokes: list


@dataclass
class Sketch:
    path: str
    width: int
    height: int
    fps: float
    source_path: str
    source_frames: list    # [start, end, step]
    settings: dict
    complete: bool
    frames: list
    source_start_number: int | None = None    # an image sequence read from this image on


def _whole_or_none(value) -> int | None:
    return None if value is None else int(value)


def _stroke(s: dict) -> Stroke:
    widths, colour = s.get("widths"), s.get("colour")
    return Stroke(int(s["id"]), [[float(x), float(y)] for x, y in s["points"]], float(s["width"]),
                  float(s.get("opacity", 1.0)), None if widths is None else [float(w) for w in widths],
                  None if colour is None else [float(c) for c in colour][:3], bool(s.get("locked", False)))


def load_sketch(path: str) -> Sketch:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise SketchFileError(f"sketch file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise SketchFileError(f"{path} is not a readable sketch.json ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SketchFileError(f"{path} is not a DynaSketch sketch (format is not {FORMAT!r})")
    if doc.get("version") not in SUPPORTED_VERSIONS:
        raise SketchFileError(f"{path} has sketch version {doc.get('version')}; this add-on reads "
                              f"version {', '.join(map(str, SUPPORTED_VERSIONS))}: update the add-on")
    try:
        frames = [Frame(int(f["index"]), [_stroke(s) for s in f["strokes"]]) for f in doc["frames"]]
        sketch = Sketch(path, int(doc["width"]), int(doc["height"]), float(doc.get("fps") or 24.0),
                        doc.get("source", {}).get("path", ""), list(doc.get("source", {}).get("frames", [])),
                        doc.get("settings", {}), bool(doc.get("complete", True)), frames,
                        _whole_or_none(doc.get("source", {}).get("start_number")))
    except (KeyError, TypeError, ValueError) as exc:
        raise SketchFileError(f"{path} breaks the sketch contract ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise SketchFileError(f"{path} holds no frames")
    ids = [s.id for s in frames[0].strokes]
    revised = [r.get("frame") for r in doc.get("revisions", []) if isinstance(r, dict)]
    for f in frames:
        # a revision changes the strokes from its frame on (drawn, deleted): each run of frames
        # between revisions has the same strokes
        if f.index in revised:
            ids = [s.id for s in f.strokes]
        if [s.id for s in f.strokes] != ids:
            raise SketchFileError(f"{path}: frame {f.index} does not have the same strokes as frame "
                                  f"{frames[0].index}")
        for s in f.strokes:
            if len(s.points) < 4 or (len(s.points) - 1) % 3:
                raise SketchFileError(f"{path}: stroke {s.id} of frame {f.index} does not have 3*S+1 points")
            if s.widths is not None and len(s.widths) != (len(s.points) - 1) // 3 + 1:
                raise SketchFileError(f"{path}: stroke {s.id} of frame {f.index} has {len(s.widths)} widths "
                                      f"for {(len(s.points) - 1) // 3 + 1} on-curve points")
    return sketch
