"""End-to-end speed: the `dynasketch sketch` command on a 24-frame clip, start-up included
(the Python process, imports, decoding, masking from the clip's mask file, tracking,
optimisation, sketch.json and SVGs; no preview), seconds per frame.

    python -m bench.end_to_end [--clip CLIP --mask MASK] [--frames 24] [--presets fast,default]
        [--repeats 3]

Default clip: soapbox.mp4 from ../shared/clips with its mask. Prints the median of
``--repeats`` runs per preset, the targets (fast at most 0.3 s, default at most 1 s per frame
on a 2-core CPU) beside them. Figures are recorded in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")
TARGET = {"fast": 0.3, "default": 1.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=os.path.join(CLIPS, "soapbox.mp4"))
    ap.add_argument("--mask", default=os.path.join(CLIPS, "soapbox.mask.mp4"))
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--presets", default="fast,default")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = os.path.join(os.path.dirname(__file__), "..")
    print(f"{os.path.basename(args.clip)}, first {args.frames} frames, {os.cpu_count()} CPUs\n")
    print("| preset | s/frame (median) | runs | target |\n|---|---|---|---|")
    for preset in args.presets.split(","):
        times = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "engine", "sketch", args.clip, "--mask", args.mask,
                                "--out", out, "--frames", f"0:{args.frames}", "--preset", preset,
                                "--no-preview", "--progress", "none"], cwd=root, check=True)
                times.append((time.perf_counter() - start) / args.frames)
        print(f"| {preset} | {statistics.median(times):.3f} | {', '.join(f'{t:.3f}' for t in times)} | "
              f"{TARGET.get(preset, float('nan')):.1f} |", flush=True)


if __name__ == "__main__":
    main()
