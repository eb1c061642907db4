"""Speed: the rasterizer, and whole runs, and how time grows with strokes, canvas and frames.

    python bench/speed.py [--clip CLIP --mask MASK] [--quick]

Times are medians of repeated runs on this machine; compare ratios from the same run.
Figures are recorded in docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from engine.pipeline import Job, run_sketch  # noqa: E402
from engine.progress import Progress  # noqa: E402
from engine.rasterizer import SplatRasterizer  # noqa: E402
from engine.settings import Settings  # noqa: E402

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def raster_ms_per_frame(strokes: int, canvas: int, batch: int = 8, repeats: int = 15,
                        device: str = "cpu") -> float:
    """Forward + backward of ``strokes`` strokes (width 1.5) on a canvas, per frame, in ms."""
    g = torch.Generator().manual_seed(0)
    start = torch.rand(batch, strokes, 1, 2, generator=g) * canvas * 0.8 + canvas * 0.1
    control = (start + torch.randn(batch, strokes, 4, 2, generator=g) * canvas * 0.08).to(device)
    control.requires_grad_(True)
    width = torch.full((batch, strokes), 1.5 * canvas / 224, device=device)
    opacity = torch.ones(batch, strokes, device=device)
    r = SplatRasterizer()
    times = []
    for i in range(repeats + 3):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        r(control, width, opacity, canvas).mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000 / batch


def run_seconds_per_frame(clip, mask, frames, preset, **kw) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_preset(preset, mask=mask or "none", **kw)
        t = time.perf_counter()
        summary = run_sketch(Job(clip, tmp, settings, frames, preview=False), Progress())
        return (time.perf_counter() - t) / summary["frames"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=os.path.join(CLIPS, "soapbox.mp4"))
    ap.add_argument("--mask", default=os.path.join(CLIPS, "soapbox.mask.mp4"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="rasterizer only")
    args = ap.parse_args()
    dev = args.device
    name = torch.cuda.get_device_name(0) if dev == "cuda" else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"device: {dev} ({name}); torch {torch.__version__}\n")

    print("Rasterizer forward + backward, batch 8, ms per frame")
    print("| strokes \\ canvas | 112 | 224 | 448 |\n|---|---|---|---|")
    for n in (4, 16, 64):
        cells = [f"{raster_ms_per_frame(n, c, device=dev):.2f}" for c in (112, 224, 448)]
        print(f"| {n} | " + " | ".join(cells) + " |")
    if args.quick or not os.path.exists(args.clip):
        return
    mask = args.mask if os.path.exists(args.mask) else None
    print(f"\nWhole runs on {os.path.basename(args.clip)} (mask: {'yes' if mask else 'no'}), s per frame")
    print("| preset | strokes | frames | s/frame |\n|---|---|---|---|")
    for frames in ("0:16", "0:32", None):
        n = frames or "all"
        print(f"| fast | 16 | {n} | {run_seconds_per_frame(args.clip, mask, frames, 'fast', device=dev):.3f} |")
    for strokes in (8, 32):
        print(f"| fast | {strokes} | all | "
              f"{run_seconds_per_frame(args.clip, mask, None, 'fast', strokes=strokes, device=dev):.3f} |")
    print(f"| default | 16 | all | {run_seconds_per_frame(args.clip, mask, None, 'default', device=dev):.3f} |")


if __name__ == "__main__":
    main()
