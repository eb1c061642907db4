"""Memory: frames are streamed, so peak memory must not grow with clip length or frame size.

    python bench/memory.py

Writes 1080p and 4K synthetic clips of different lengths, sketches each in a fresh process
(fast preset, no preview) and prints the peak resident memory of that process.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def write_clip(path: str, frames: int, width: int, height: int) -> None:
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    base = ((np.sin(xx / 37.0) + np.cos(yy / 23.0)) * 60 + 128).astype(np.uint8)
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            img = np.roll(base, 4 * t, axis=1)
            cx = width // 4 + t * width // (2 * frames)
            img[height // 3:2 * height // 3, cx:cx + width // 8] = 30
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.dstack([img] * 3), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def peak_rss_mb(clip: str, out: str) -> float:
    code = ("import resource, sys; from engine.cli import main; rc = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, "sketch", clip, "--out", out, "--preset", "fast",
                             "--strokes", "16", "--seeds", "1", "--no-preview", "--mask", "none",
                             "--progress", "none"], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main():
    print("| clip | frames | peak RSS (MB) |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for (w, h), frames in [((1920, 1080), 24), ((1920, 1080), 240), ((3840, 2160), 24), ((3840, 2160), 96)]:
            clip = os.path.join(tmp, f"{w}x{h}_{frames}.mp4")
            write_clip(clip, frames, w, h)
            rss = peak_rss_mb(clip, os.path.join(tmp, f"out_{w}_{frames}"))
            print(f"| {w}x{h} | {frames} | {rss:.0f} |", flush=True)
            os.unlink(clip)


if __name__ == "__main__":
    main()
