"""A whole ``--preset paper`` run with every neural backend, timed stage by stage.

    python bench/paper_run.py [--clip CLIP] [--frames 100] [--size 1920x1080] [--strokes 16]
                              [--device cuda] [--small]

Builds a model folder with randomly initialised weights of the real architectures (CLIP RN101
and ViT-B/32 through open_clip, saved as OpenAI's TorchScript files, text towers included;
InSPyReNet SwinB through transparent-background; CoTracker3 offline when CoTracker is
installed), saved as files and loaded by the engine's real loading code. Speed does not depend on the weights; none can be downloaded here. The files are made
here, so their published checksums cannot match: this script (and only it) skips the checksum
check for them.

The clip is ``--clip`` (played forwards and backwards until it has ``--frames`` frames) or the
procedural sample, scaled to ``--size``. The sketch runs in a child process
(``--progress json``); each line is timestamped on arrival, so the table gives the time per
stage and the whole run, plus the child's peak GPU memory. ``--small`` is a smoke test with
tiny models and budgets, for a CPU. Figures are recorded in docs/MODELS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def make_clip(path: str, source: str | None, frames: int, width: int, height: int) -> str:
    """``frames`` frames of ``source`` (ping-pong) or of the sample, scaled to width x height."""
    import av
    import numpy as np
    from PIL import Image

    if source:
        from engine.video import FrameRange, open_video

        clip = open_video(source)
        pool = [rgb for _, rgb, _ in clip.frames(FrameRange(0, clip.info.frame_count))]
        pool = pool + pool[-2:0:-1] if len(pool) > 2 else pool
        images = (pool[i % len(pool)] for i in range(frames))
    else:
        from engine.sample import figure_frame

        images = (np.asarray(figure_frame(t, frames, width, height)[0]) for t in range(frames))
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in images:
            if rgb.shape[:2] != (height, width):
                rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BICUBIC))
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_models(home: str, small: bool) -> list[str]:
    """Random-weight checkpoints of the real architectures; returns the backends made."""
    import torch

    from bench.checkpoints import OPENAI_TEXT, RN101, SMALL_TEXT, VIT_B_32, clip_model, save_openai_clip

    if small:
        models = (("RN101.pt", dict(layers=(1, 1, 1, 1), width=16)),
                  ("ViT-B-32.pt", dict(layers=2, width=64, patch_size=32)))
        text, embed = SMALL_TEXT, 32
    else:   # RN101 and ViT-B/32 as OpenAI released them, text towers too (loading reads them)
        models, text, embed = (("RN101.pt", RN101), ("ViT-B-32.pt", VIT_B_32)), OPENAI_TEXT, 512
    for name, vision in models:
        save_openai_clip(clip_model(vision, embed, text), os.path.join(home, name))
    made = ["clip", "inspyrenet"]
    from transparent_background.InSPyReNet import InSPyReNet_SwinB

    net = InSPyReNet_SwinB(depth=64, pretrained=False, base_size=[384, 384] if small else [1024, 1024],
                           threshold=None)
    torch.save(net.state_dict(), os.path.join(home, "ckpt_fast.pth" if small else "ckpt_base.pth"))
    try:
        from cotracker.models.core.cotracker.cotracker3_offline import CoTrackerThreeOffline
    except ImportError:
        return made
    model = CoTrackerThreeOffline(stride=4, corr_radius=3, window_len=60)
    torch.save(model.state_dict(), os.path.join(home, "scaled_offline.pth"))
    return made + ["cotracker"]


def time_components() -> dict:
    """Wrap the engine's heavy calls to add up their time (CUDA synchronised) and count them."""
    import functools
    import importlib

    import torch

    timers: dict = {}
    targets = [("engine.masks.inspyrenet", "InSPyReNetMasker", "__call__", "mask (per frame)"),
               ("engine.pipeline", "Sketcher", "track", "track"),
               ("engine.neural.clip_saliency", "ClipSaliency", "__call__", "saliency"),
               ("engine.optimise", "StrokeOptimiser", "keyframe", "optimise: first frame"),
               ("engine.optimise", "StrokeOptimiser", "refine", "optimise: re-initialised strokes"),
               ("engine.optimise", "StrokeOptimiser", "window", "optimise: windows")]
    for module, cls, method, label in targets:
        owner = getattr(importlib.import_module(module), cls)
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*a, __original=original, __label=label, **k):
            sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
            sync()
            t = time.perf_counter()
            try:
                return __original(*a, **k)
            finally:
                sync()
                entry = timers.setdefault(__label, [0.0, 0])
                entry[0] += time.perf_counter() - t
                entry[1] += 1

        setattr(owner, method, timed)
    return timers


def child(argv: list[str], report_file: str) -> int:
    """Run ``dynasketch sketch`` in this process with the checksum check off."""
    import torch

    from engine import cli, models

    for name, model in list(models.MODELS.items()):
        models.MODELS[name] = dataclasses.replace(model, sha256=None, md5=None)
    timers = time_components()

    def report():
        cuda = torch.cuda.is_available()
        with open(report_file, "w") as f:
            json.dump({"peak_gpu_bytes": torch.cuda.max_memory_allocated() if cuda else 0,
                       "peak_gpu_reserved": torch.cuda.max_memory_reserved() if cuda else 0,
                       "components": timers}, f)

    try:
        return cli.main(argv)
    finally:
        report()


SWITCHES = ("DYNASKETCH_COMPILE", "DYNASKETCH_VIEW_BANK", "DYNASKETCH_CUDA_GRAPHS", "DYNASKETCH_PREFETCH")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=None)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--small", action="store_true", help="tiny models (a CPU smoke test)")
    ap.add_argument("--work", default=None, help="folder for the clip, models and output")
    ap.add_argument("--extra", default="", help="more sketch options, one string")
    ap.add_argument("--limit", type=float, default=None,
                    help="seconds; then stop the sketch (it keeps its finished frames) and report")
    ap.add_argument("--child", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.child is not None:
        from engine import cli

        cli.end(child(args.child[1:], args.child[0]))      # as `dynasketch` ends

    work = args.work or tempfile.mkdtemp(prefix="paper-run-")
    home = os.path.join(work, "models")
    os.makedirs(home, exist_ok=True)
    width, height = map(int, args.size.split("x"))
    t0 = time.perf_counter()
    clip = make_clip(os.path.join(work, "clip.mp4"), args.clip, args.frames, width, height)
    made = make_models(home, args.small)
    shutil.rmtree(os.path.join(home, "masks"), ignore_errors=True)     # time the masker too
    print(f"clip {clip}: {args.frames} frames {width}x{height}; random models: {', '.join(made)} "
          f"({time.perf_counter() - t0:.0f} s to make)", flush=True)
    switches = {k: v for k, v in os.environ.items() if k in SWITCHES}
    print(f"switches: {switches or 'none (the defaults)'}", flush=True)

    sketch = ["sketch", clip, "--out", os.path.join(work, "out"), "--overwrite", "--progress", "json",
              "--preset", args.preset, "--strokes", str(args.strokes), "--device", args.device,
              "--no-preview", "--guidance", "clip", "--saliency", "clip",
              "--mask", "inspyrenet-fast" if args.small else "inspyrenet",
              "--tracker", "cotracker" if "cotracker" in made else "lucas-kanade", *args.extra.split()]
    report_file = os.path.join(work, "report.json")
    env = {**os.environ, "DYNASKETCH_HOME": home, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", report_file, *sketch],
                            stdout=subprocess.PIPE, text=True, env=env)

    def stop(*_):                          # a cap or SIGTERM: the engine stops between steps
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    timer = threading.Timer(args.limit, stop) if args.limit else None
    if timer:
        timer.daemon = True
        timer.start()
    stages: dict[str, float] = {}
    last_stage, last_time, first_frame = "start", start, None
    for line in proc.stdout:
        now = time.perf_counter()
        try:
            event = json.loads(line)
        except ValueError:
            continue
        stages[last_stage] = stages.get(last_stage, 0.0) + now - last_time
        last_stage, last_time = event.get("stage", "?"), now
        if event.get("event") == "start":
            stages["load"] = stages.pop("start", 0.0)
        if first_frame is None and event.get("stage") == "mask":
            first_frame = now - start
        print(f"[{now - start:6.1f} s] {event.get('stage')}: {event.get('message')}", flush=True)
    code = proc.wait()
    if timer:
        timer.cancel()
    total = time.perf_counter() - start
    report = json.load(open(report_file)) if os.path.exists(report_file) else {}
    sketch_path = os.path.join(work, "out", "sketch.json")      # absent if stopped while loading
    sketch_json = json.load(open(sketch_path)) if os.path.exists(sketch_path) else {}
    frames = len(sketch_json.get("frames", []))
    print(f"\nexit {code}{' (stopped at the limit)' if code == 130 else ''}; {frames} of "
          f"{args.frames} frames sketched; backends {sketch_json.get('settings', {}).get('backends')}")
    print("| stage | seconds |\n|---|---|")
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds:.1f} |")
    print(f"| **whole run** | **{total:.1f}** |")
    print(f"first frame done after {first_frame or 0:.1f} s; "
          f"{(total - (first_frame or 0)) / max(1, frames - 1):.2f} s per later frame")
    print("\n| component | seconds | calls |\n|---|---|---|")
    for label, (seconds, calls) in report.get("components", {}).items():
        print(f"| {label} | {seconds:.1f} | {calls} |")
    print(f"peak GPU memory: {report.get('peak_gpu_bytes', 0) / 2**30:.2f} GiB allocated, "
          f"{report.get('peak_gpu_reserved', 0) / 2**30:.2f} GiB reserved")
    return code


if __name__ == "__main__":
    sys.exit(main())
