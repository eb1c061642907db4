"""Coherence and placement of the sketch: temporal DynaSketch against ``--no-temporal``.

    python bench/quality.py [--clip CLIP --mask MASK] [--preset default] [--frames A:B]

Defaults to ../shared/clips/soapbox.mp4 with its mask. Prints a Markdown table; the
figures are recorded in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench import metrics  # noqa: E402
from engine.pipeline import Job, run_sketch  # noqa: E402
from engine.progress import Progress  # noqa: E402
from engine.settings import Settings  # noqa: E402

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def sketch(clip, mask, out, preset, frames, temporal, strokes):
    settings = Settings.from_preset(preset, mask=mask or "none", temporal=temporal, strokes=strokes)
    start = time.perf_counter()
    run_sketch(Job(clip, out, settings, frames, preview=False), Progress())
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=os.path.join(CLIPS, "soapbox.mp4"))
    ap.add_argument("--mask", default=os.path.join(CLIPS, "soapbox.mask.mp4"))
    ap.add_argument("--preset", default="default")
    ap.add_argument("--frames", default=None)
    ap.add_argument("--strokes", type=int, default=16)
    args = ap.parse_args()
    if not os.path.exists(args.clip):
        sys.exit(f"clip not found: {args.clip}")
    mask = args.mask if args.mask and os.path.exists(args.mask) else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for temporal in (True, False):
            out = os.path.join(tmp, "temporal" if temporal else "independent")
            seconds = sketch(args.clip, mask, out, args.preset, args.frames, temporal, args.strokes)
            sk = metrics.load(os.path.join(out, "sketch.json"))
            n = len(sk["frames"])
            rows.append(("temporal" if temporal else "--no-temporal", n, seconds / n,
                         metrics.flicker(sk), metrics.jitter(sk),
                         metrics.ink_on_subject(sk, mask) if mask else float("nan")))
    print(f"clip {os.path.basename(args.clip)}, preset {args.preset}, {args.strokes} strokes, "
          f"mask {'yes' if mask else 'no'}\n")
    print("| mode | frames | s/frame | flicker | jitter (px) | ink on subject |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.4f} | {r[4]:.2f} | {r[5]:.1%} |")
    t, i = rows
    print(f"\nflicker ratio temporal/independent: {t[3] / i[3]:.2f}; jitter ratio: {t[4] / i[4]:.2f}")


if __name__ == "__main__":
    main()
