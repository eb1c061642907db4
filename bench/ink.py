"""What line weight and footage colour (engine/ink) add to the engine's time per frame.

    python -m bench.ink CLIP --out DIR [--mask MASK] [--preset fast|default] [--frames 0:24]

Runs ``dynasketch sketch`` in this process (``--overwrite --no-preview``) and times, in the
same run, every call of ``StrokeInk.draw`` (widths and colours) and of ``svg_document``
(the SVG, now drawn as filled outlines): their share of the whole run is what they add.
"""
from __future__ import annotations

import argparse
import time

from engine import export
from engine.cli import main as dynasketch
from engine.ink import StrokeInk


def timed(owner, name: str, spent: dict):
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
            spent[name + " calls"] = spent.get(name + " calls", 0) + 1

    setattr(owner, name, wrapper)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip")
    parser.add_argument("--out", required=True)
    parser.add_argument("--mask", default="auto")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--frames", default=None)
    args = parser.parse_args(argv)
    spent: dict = {}
    timed(StrokeInk, "draw", spent)
    timed(export, "svg_document", spent)
    command = ["sketch", args.clip, "--out", args.out, "--mask", args.mask, "--preset", args.preset,
               "--overwrite", "--no-preview", "--progress", "none"]
    if args.frames:
        command += ["--frames", args.frames]
    start = time.perf_counter()
    code = dynasketch(command)
    total = time.perf_counter() - start
    frames = spent.get("draw calls", 0)
    ink, svg = spent.get("draw", 0.0), spent.get("svg_document", 0.0)
    print(f"exit {code}; {frames} frames in {total:.1f} s ({total / max(frames, 1):.3f} s/frame, loading included)")
    print(f"ink (widths + colours): {1000 * ink / max(frames, 1):.2f} ms/frame, {100 * ink / total:.2f} % of the run")
    print(f"svg_document (outlines): {1000 * svg / max(frames, 1):.2f} ms/frame, {100 * svg / total:.2f} % of the run")
    print(f"together: {100 * (ink + svg) / total:.2f} %")


if __name__ == "__main__":
    main()
