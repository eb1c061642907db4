"""Contact sheets of one clip sketched with 4, 8, 16 and 32 strokes, side by side: 4 strokes
stay the outline; more add the inner marks (eyes, wheels, a logo) and then inner lines.

    python -m bench.stroke_counts OUT.png CLIP [--counts 4,8,16,32] [--frames 12]
        [--preset default] [--rows 3] [--no-source] [--masks FOLDER]

The clip's mask is ``bench.quality.mask_for``'s (its own mask video, else the masks
``--mask auto`` gives). The sketches are kept in a temporary folder; prints the folder of
each count's sketch.json and its share of strokes that are closed loops (the marks).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np

from bench.contact_sheet import contact_sheet
from bench.quality import mask_for
from engine.pipeline import Job, run_sketch
from engine.progress import Progress
from engine.settings import Settings
from engine.video import open_video


def loops(sketch: dict) -> float:
    """The share of strokes on the first frame whose ends nearly meet (the inner marks)."""
    strokes = sketch["frames"][0]["strokes"]
    closed = 0
    for s in strokes:
        p = np.array(s["points"], float)
        length = np.linalg.norm(np.diff(p, axis=0), axis=1).sum()
        closed += np.linalg.norm(p[0] - p[-1]) < 0.2 * max(length, 1e-6)
    return closed / max(len(strokes), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("clip")
    ap.add_argument("--counts", default="4,8,16,32")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--no-source", action="store_true")
    ap.add_argument("--masks", default=os.path.join(tempfile.gettempdir(), "dynasketch-bench-masks"))
    args = ap.parse_args()
    os.makedirs(args.masks, exist_ok=True)
    count = min(args.frames, open_video(args.clip).info.frame_count)
    mask = mask_for(args.clip, max(count, 24), args.masks)
    folder = tempfile.mkdtemp(prefix="dynasketch-counts-")
    paths = []
    for n in (int(c) for c in args.counts.split(",")):
        out = os.path.join(folder, str(n))
        settings = Settings.from_preset(args.preset, mask=mask, strokes=n)
        run_sketch(Job(args.clip, out, settings, f"0:{count}", preview=False), Progress())
        paths.append(os.path.join(out, "sketch.json"))
        with open(paths[-1]) as f:
            print(f"{n} strokes: {out}  closed strokes (marks) {loops(json.load(f)):.0%}", flush=True)
    contact_sheet(paths, rows=args.rows, source=not args.no_source).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
