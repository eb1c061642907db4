"""ISNet masks: speed, accuracy and steadiness per input size (figures in docs/BENCHMARKS.md).

    .venv/bin/python -m bench.masks [--frames 24] [--configs 512:1,768:1,1024:2,1024:3]
        [--clips a.mp4,...] [--write-masks FOLDER]

For every clip (default: the clips in ../shared/clips) and configuration SIZE:EVERY (the
network's input size, and how often it runs: the frames between are carried by optical
flow), in a child process each (so its peak memory is its own): seconds per frame of
``ISNetMasker`` (resize, network, upsampling, threshold, carrying; the first frame, which
loads the network, not counted), the IoU
against the full-size (1024 px) network's mask of the same frame, against the clip's
``<name>.mask.mp4`` where there is one, and mask flicker: 1 minus the IoU of consecutive
masks after warping the previous one with the input's optical flow (DIS). ``--write-masks``
keeps the full-size masks as ``<clip>.isnet.mp4`` (lossless), to check by eye.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import cv2
import numpy as np

from engine import models
from engine.masks.choose import require_isnet
from engine.masks.isnet import EXPORT_SIZE, ISNetMasker
from engine.video import FrameRange, open_video

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def flicker(masks: list[np.ndarray], greys: list[np.ndarray]) -> float:
    """Mean of 1 - IoU(previous mask warped by the flow, current mask)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = masks[0].shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t in range(1, len(masks)):
        back = dis.calc(greys[t], greys[t - 1], None)
        warped = cv2.remap(masks[t - 1].astype(np.uint8), xx + back[..., 0], yy + back[..., 1],
                           cv2.INTER_NEAREST, borderValue=0) > 0
        out.append(1.0 - iou(warped, masks[t]))
    return float(np.mean(out)) if out else 0.0


def write_mask_video(path: str, masks) -> None:
    """Boolean masks ``(H, W)`` as a lossless grey video (FFV1), which ``--mask`` reads."""
    import av

    with av.open(path, "w") as out:
        stream = None
        for m in masks:
            if stream is None:
                stream = out.add_stream("ffv1", rate=24)
                stream.width, stream.height, stream.pix_fmt = m.shape[1], m.shape[0], "gray"
            out.mux(stream.encode(av.VideoFrame.from_ndarray((m * 255).astype(np.uint8), format="gray")))
        out.mux(stream.encode())


def frames_of(path: str, count: int) -> list[np.ndarray]:
    clip = open_video(path)
    return [rgb for _, rgb, _ in clip.frames(FrameRange(0, min(count, clip.info.frame_count)))]


def one(path: str, config: str, count: int, out: str) -> None:
    """Mask ``count`` frames with ``config`` (SIZE:EVERY); write the masks and timings to ``out``."""
    import tempfile

    size, every = map(int, config.split(":"))
    clip = open_video(path)
    frames = frames_of(path, count)
    masks, seconds = [], []
    with tempfile.TemporaryDirectory() as cache:
        masker = ISNetMasker(require_isnet("isnet"), clip, FrameRange(0, len(frames)), "cpu", cache, size, every)
        for i, rgb in enumerate(frames):
            start = time.perf_counter()
            masks.append(masker(i, rgb, None) > 0.5)
            seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez_compressed(out, masks=np.array(masks), seconds=np.array(seconds), peak_mib=peak)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--configs", default="256:1,384:1,512:1,640:1,768:1,1024:2,1024:3,1024:4")
    ap.add_argument("--clips", default="")
    ap.add_argument("--write-masks", default="")
    ap.add_argument("--one", nargs=3, metavar=("CLIP", "CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return one(args.one[0], args.one[1], args.frames, args.one[2])
    clips = args.clips.split(",") if args.clips else sorted(
        os.path.join(SHARED, f) for f in os.listdir(SHARED) if f.endswith(".mp4") and ".mask." not in f)
    full_size = f"{EXPORT_SIZE}:1"
    sizes = [full_size] + args.configs.split(",")
    print(f"weights: {os.path.basename(require_isnet('isnet'))}, {args.frames} frames a clip, "
          f"{os.cpu_count()} CPU cores", flush=True)
    rows = []
    for path in clips:
        name = os.path.basename(path)
        frames = frames_of(path, args.frames)
        greys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        truth_path = path.replace(".mp4", ".mask.mp4")
        truth = [f.mean(-1) >= 128 for f in frames_of(truth_path, args.frames)] if os.path.exists(truth_path) else None
        results = {}
        for size in sizes:
            out = f"/tmp/dynasketch-bench-mask-{os.getpid()}-{size.replace(':', '-')}.npz"
            subprocess.run([sys.executable, "-m", "bench.masks", "--frames", str(args.frames),
                            "--one", path, size, out], check=True)
            with np.load(out) as data:
                results[size] = dict(masks=data["masks"], seconds=data["seconds"], peak=float(data["peak_mib"]))
            os.unlink(out)
        full = results[full_size]["masks"]
        for size in sizes:
            r = results[size]
            row = dict(clip=name, config=size, frame=f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                       sec_per_frame=float(np.mean(r["seconds"][int(size.split(":")[1]):])), peak_mib=r["peak"],
                       iou_vs_full_mean=float(np.mean([iou(a, b) for a, b in zip(r["masks"], full)])),
                       iou_vs_full_min=float(np.min([iou(a, b) for a, b in zip(r["masks"], full)])),
                       flicker=flicker(list(r["masks"]), greys), area=float(r["masks"].mean()))
            if truth is not None:
                row["iou_vs_truth"] = float(np.mean([iou(a, b) for a, b in zip(r["masks"], truth)]))
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.write_masks:
            os.makedirs(args.write_masks, exist_ok=True)
            write_mask_video(os.path.join(args.write_masks, name.replace(".mp4", ".isnet.mkv")), full)
    print(f"models folder: {models.home()}")


if __name__ == "__main__":
    main()
