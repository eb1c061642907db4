"""``dynasketch batch``: its overhead over the single runs, and what ``--chunk`` costs in coherence.

    python -m bench.batch overhead [--shots 3] [--frames 24] [--rounds 2]
    python -m bench.batch chunks [--clips a.mp4,...] [--frames 48] [--chunk 12] [--overlap 8]

``overhead``: the same three shots (the project's sample clip, fast preset, 6 strokes, no
preview) sketched one after another by ``dynasketch sketch`` (one process each), then by one
``dynasketch batch`` on a local Ray started on the spot with ``--cpus-per-shot`` = every core,
so the shots run one at a time with the threads a single run has: the batch's wall time over
the sum of the single runs is its overhead (Ray's start and stop, the tasks, the record);
rounds alternate the two. Also the default ``--cpus-per-shot 1`` (two shots at once here).

``chunks``: each clip (default: the sample clip and the shared soapbox, with their masks)
sketched in one piece and with ``--chunk``, both through ``dynasketch batch``: wall time,
control-point jitter and flow-warped flicker (bench/metrics.py), and the seam step: the
median stroke's move from frame to frame over the frames at the seams (the frame before each
seam to the end of its overlap) against the median move elsewhere (1.0: no jump), and the
strokes that jump anywhere (re-seeds: a move over 4x the frame's median).
Prints Markdown tables; the figures are in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPS = os.path.join(ROOT, "..", "shared", "clips")
FAST = ["--preset", "fast", "--strokes", "6", "--seeds", "1", "--no-preview"]


def engine(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr[-800:]}")
    return time.perf_counter() - start


def write_shots(path: str, shots: list[dict]) -> str:
    with open(path, "w") as f:
        json.dump(shots, f)
    return path


def sample_clip(folder: str, frames: int) -> tuple[str, str]:
    clip, mask = os.path.join(folder, "sample.mp4"), os.path.join(folder, "sample.mask.mp4")
    engine("sample", clip, "--mask", mask, "--frames", str(frames))
    return clip, mask


def overhead(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        clip, mask = sample_clip(folder, args.frames * args.shots)
        ranges = [f"{i * args.frames}:{(i + 1) * args.frames}" for i in range(args.shots)]
        shots = [{"clip": clip, "out": f"shot{i}", "mask": mask, "frames": r, "preset": "fast", "strokes": 6,
                  "seeds": 1, "no-preview": True} for i, r in enumerate(ranges)]
        rows = []
        for round_ in range(args.rounds):
            base = os.path.join(folder, f"round{round_}")
            singles = [engine("sketch", clip, "--out", os.path.join(base, "single", f"shot{i}"), "--mask", mask,
                              "--frames", r, *FAST) for i, r in enumerate(ranges)]
            listed = write_shots(os.path.join(base, "shots.json"), shots)
            serial = engine("batch", listed, "--out", os.path.join(base, "batch"), "--cpus-per-shot",
                            str(os.cpu_count()))
            parallel = engine("batch", listed, "--out", os.path.join(base, "batch-parallel"))
            rows.append((sum(singles), serial, parallel))
            print(f"round {round_ + 1}: singles {' + '.join(f'{s:.1f}' for s in singles)} = {sum(singles):.1f} s; "
                  f"batch {serial:.1f} s ({serial / sum(singles) - 1:+.1%}); --cpus-per-shot 1: {parallel:.1f} s "
                  f"({parallel / sum(singles) - 1:+.1%})", flush=True)
    print(f"\n| round | sum of {args.shots} single runs | batch, one shot at a time | overhead | "
          "batch, --cpus-per-shot 1 | against the sum |\n|---|---|---|---|---|---|")
    for i, (total, serial, parallel) in enumerate(rows, 1):
        print(f"| {i} | {total:.1f} s | {serial:.1f} s | {serial / total - 1:+.1%} | {parallel:.1f} s | "
              f"{parallel / total - 1:+.1%} |")


def stroke_moves(sketch: dict) -> np.ndarray:
    """``(T - 1, N)``: each stroke's mean control-point move from frame t to t + 1."""
    points = np.array([[s["points"] for s in f["strokes"]] for f in sketch["frames"]], np.float64)
    return np.linalg.norm(points[1:] - points[:-1], axis=-1).mean(axis=-1)


def seam_step(sketch: dict, chunk: int, overlap: int) -> float:
    """How far the drawing moves at the seams: the median stroke's move per frame there (a
    re-seeded stroke, which any sketch has now and then, does not count) over the median
    move elsewhere (1.0: no jump)."""
    typical = np.median(stroke_moves(sketch), axis=1)
    seams = [t for s in range(chunk, len(typical) + 1, chunk) for t in range(s - 1, min(s + overlap, len(typical)))]
    if not seams:
        return float("nan")
    return float(typical[seams].mean() / np.median(np.delete(typical, seams)))


def pops(sketch: dict) -> int:
    """Strokes that jump: a move over 4x the frame's median move and over 10 px (a re-seed)."""
    moves = stroke_moves(sketch)
    return int(((moves > 4 * np.median(moves, axis=1, keepdims=True)) & (moves > 10)).sum())


def chunks(args) -> None:
    from bench import metrics

    with tempfile.TemporaryDirectory() as folder:
        clips = []
        if args.clips:
            clips = [(c, c.replace(".mp4", ".mask.mp4")) for c in args.clips.split(",")]
        else:
            clips.append(sample_clip(folder, args.frames))
            soapbox = os.path.join(CLIPS, "soapbox.mp4")
            if os.path.exists(soapbox):
                clips.append((soapbox, soapbox.replace(".mp4", ".mask.mp4")))
        print("| clip | frames | how | wall s | jitter | flicker | seam step | strokes that jump |\n"
              "|---|---|---|---|---|---|---|---|")
        for clip, mask in clips:
            shot = {"clip": clip, "out": "shot", "mask": mask, "frames": f"0:{args.frames}", "preset": "fast",
                    "strokes": args.strokes, "seeds": 1, "no-preview": True}
            name = os.path.basename(clip)
            for how, extra in (("one piece", []), (f"--chunk {args.chunk} --overlap {args.overlap}",
                                                   ["--chunk", str(args.chunk), "--overlap", str(args.overlap)])):
                base = os.path.join(folder, "runs", name, "chunked" if extra else "whole")
                seconds = engine("batch", write_shots(os.path.join(folder, f"{name}-{bool(extra)}.json"), [shot]),
                                 "--out", base, *extra)
                sketch = metrics.load(os.path.join(base, "shot", "sketch.json"))
                print(f"| {name} | {len(sketch['frames'])} | {how} | {seconds:.1f} | {metrics.jitter(sketch):.2f} | "
                      f"{metrics.flicker(sketch):.4f} | {seam_step(sketch, args.chunk, args.overlap):.2f} | "
                      f"{pops(sketch)} |",
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--shots", type=int, default=3)
    o.add_argument("--frames", type=int, default=24)
    o.add_argument("--rounds", type=int, default=2)
    c = sub.add_parser("chunks")
    c.add_argument("--clips", default="")
    c.add_argument("--frames", type=int, default=48)
    c.add_argument("--strokes", type=int, default=8)
    c.add_argument("--chunk", type=int, default=12)
    c.add_argument("--overlap", type=int, default=8)
    args = parser.parse_args()
    overhead(args) if args.what == "overhead" else chunks(args)


if __name__ == "__main__":
    main()
