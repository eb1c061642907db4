"""Speed of CLIP guidance: one optimisation step (render, CLIPasso loss on the plain pair and
4 augmented views, backward) for a batch of frames, on RN101 as CLIPasso uses it.

    python bench/clip_speed.py [--device cuda] [--batch 8] [--compile | --bank K | --first | --encoder]

``--compile`` times the optimiser steps with the encoder through torch.compile beside the
same steps without it, in one run, and the time the compilations took. ``--bank K`` times
the loss step (and, on CUDA, the optimiser steps) without and with a view bank of K warps
per frame, and what encoding the bank costs per frame. ``--first`` times only the first
frame's steps, its seeds sharing the frame's warps (as the engine does) and, as before, each
with a copy of the frame and warps of its own. ``--encoder`` times the optimiser steps with
the encoder as the H100 first measured it (ATen's average pools, fp32 weights that autocast
casts at every call, features compared in channel-first order) beside the encoder as it is.

The encoder is RN101 built by open_clip with random weights: the speed does not depend on
the weights, and none can be downloaded here. Figures are recorded in docs/MODELS.md.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from engine.neural.clip_guidance import ClipGuidance, fold_batch_norms  # noqa: E402
from engine.rasterizer import SplatRasterizer  # noqa: E402


def main():
    import open_clip

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--layouts", action="store_true", help="only the optimiser steps without channels-last")
    ap.add_argument("--profile", default=None, help="write a profile of 10 window steps here")
    ap.add_argument("--compile", action="store_true",
                    help="only the optimiser steps, without and with torch.compile")
    ap.add_argument("--bank", type=int, default=0,
                    help="only the augmented step, without and with a view bank of this many warps a frame")
    ap.add_argument("--first", action="store_true",
                    help="only the first frame's optimiser steps, its seeds sharing the frame or not")
    ap.add_argument("--encoder", action="store_true",
                    help="only the optimiser steps, with the encoder as first measured and as now")
    args = ap.parse_args()
    dev = torch.device(args.device)
    visual = open_clip.create_model("RN101-quickgelu", pretrained=None).visual
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch}, 16 strokes, 224 px, plain + 4 augmented views")
    if args.layouts and dev.type == "cuda":      # the same, without channels-last
        fresh = open_clip.create_model("RN101-quickgelu", pretrained=None).visual
        print("CUDA graphs: on, channels-last off")
        optimiser_steps(ClipGuidance(None, dev, visual=fresh, channels_last=False), dev, args.batch, None)
        return
    if args.encoder:
        graphs = dev.type == "cuda"
        for label in ("as first measured (ATen pools, fp32 weights, channel-first rows)", "as now"):
            print(f"CUDA graphs: {'on' if graphs else 'off'}; encoder {label}")
            guidance = ClipGuidance(None, dev, visual=copy.deepcopy(visual), graphs=graphs)
            if label != "as now":
                guidance.visual = fold_batch_norms(copy.deepcopy(visual).to(dev).eval().requires_grad_(False))
                if guidance.channels_last:
                    guidance.visual = guidance.visual.to(memory_format=torch.channels_last)
                guidance.rows = lambda maps: maps.flatten(1)
            optimiser_steps(guidance, dev, args.batch, None)
        return
    if args.first:
        optimiser_steps(ClipGuidance(None, dev, visual=visual, graphs=dev.type == "cuda"), dev, args.batch, None,
                        only_first=True)
        return
    if args.compile:
        graphs = dev.type == "cuda"
        for compiled in (False, True):
            print(f"CUDA graphs: {'on' if graphs else 'off'}; torch.compile: {'on' if compiled else 'off'}")
            guidance = ClipGuidance(None, dev, visual=copy.deepcopy(visual), graphs=graphs, compiled=compiled)
            t = time.perf_counter()
            optimiser_steps(guidance, dev, args.batch, None)
            print(f"  (these steps, compilation included: {time.perf_counter() - t:.0f} s)")
        return
    if args.bank:
        graphs = dev.type == "cuda"
        print(f"CUDA graphs: {'on' if graphs else 'off'}")
        for bank in (0, args.bank):
            guidance = ClipGuidance(None, dev, visual=visual, graphs=graphs, view_bank=bank)
            label = f"view bank of {guidance.view_bank}" if bank else "fresh views (CLIPasso)"
            if bank:
                frames = torch.rand(args.batch, 3, 224, 224, device=dev)
                guidance.prepare(frames, None)                  # first calls: cuDNN, graphs
                took = timed(dev, lambda: guidance.prepare(frames, None))
                print(f"{label}: encoding it takes {took * 1000 / args.batch:.0f} ms per frame")
            step_speed(guidance, dev, args, label)
            if graphs:
                optimiser_steps(guidance, dev, args.batch, None)
        return
    modes = (False, True) if dev.type == "cuda" else (False,)
    for graphs in modes:
        print(f"CUDA graphs: {'on' if graphs else 'off'}")
        for views in (0, 4):
            step_speed(ClipGuidance(None, dev, views=views, visual=visual, graphs=graphs), dev, args,
                       f"views {views}")
        optimiser_steps(ClipGuidance(None, dev, visual=visual, graphs=graphs), dev, args.batch,
                        args.profile if graphs == modes[-1] else None)


def timed(dev, fn) -> float:
    """Seconds ``fn()`` takes, the GPU's work included."""
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def step_speed(guidance, dev, args, label: str) -> None:
    """Median time of one render + loss + backward for ``args.batch`` frames."""
    frames = torch.rand(args.batch, 3, 224, 224, device=dev)
    target = guidance.prepare(frames, None)
    ctrl = (torch.rand(args.batch, 16, 4, 2, device=dev) * 200 + 12).requires_grad_(True)
    r = SplatRasterizer()
    width, opacity = torch.full((args.batch, 16), 1.5, device=dev), torch.ones(args.batch, 16, device=dev)

    def step():
        sketch = (1 - r(ctrl, width, opacity, 224)).expand(-1, 3, -1, -1)
        guidance(sketch, target).sum().backward()

    step()
    step_time = statistics.median(timed(dev, step) for _ in range(args.repeats))
    print(f"{label}: {step_time * 1000:.0f} ms per step for {args.batch} frames "
          f"({step_time * 1000 / args.batch:.0f} ms per frame-step)")


def optimiser_steps(guidance, dev, batch: int, profile: str | None, only_first: bool = False) -> None:
    """Steps as the pipeline takes them: the first frame (3 seeds) and a window of frames."""
    from engine.initialise import EdgeSaliency
    from engine.optimise import StrokeOptimiser
    from engine.settings import Settings

    s = Settings.from_preset("paper")
    opt = StrokeOptimiser(s, SplatRasterizer(), guidance, EdgeSaliency(), area=(0, 0, 224, 224))
    g = torch.Generator(device=dev).manual_seed(0)
    for i, size in enumerate((batch,) if only_first else (batch, 2 * batch)):
        frames = torch.rand(size, 3, 224, 224, device=dev)
        steps_for(opt, s, frames, g, dev, with_first=i == 0, profile=profile if i == 0 else None,
                  only_first=only_first)


def steps_for(opt, s, frames, g, dev, with_first: bool, profile, only_first: bool = False) -> None:
    batch = len(frames)

    def first(steps):
        s.keyframe_steps = steps
        opt.keyframe(frames[:1], None, g)

    init = opt.new_strokes(frames, None, s.strokes, g)
    tracks = opt.samples(init)

    def window(steps):
        s.frame_steps = steps
        opt.window(frames, None, init, init[0], tracks, torch.ones(tracks.shape[:3], dtype=torch.bool, device=dev),
                   torch.arange(s.strokes, device=dev))

    def first_apart(steps):          # as before the seeds shared their frame: a frame each
        one = frames[:1].repeat_interleave(s.seeds, 0)
        target = opt.guidance.prepare(one, None)
        opt._adam(opt.new_strokes(one, None, s.strokes, g), steps, s.keyframe_lr,
                  lambda x: opt.sketch_loss(x, target))

    jobs = [(f"first frame, {s.seeds} seeds", first),
            (f"first frame, {s.seeds} seeds, a copy of the frame each (before)", first_apart)] if with_first else []
    for label, fn in jobs + ([] if only_first else [(f"window of {batch} frames", window)]):
        timed(dev, lambda: fn(3))
        per_step = (timed(dev, lambda: fn(23)) - timed(dev, lambda: fn(3))) / 20
        print(f"optimiser, {label}: {per_step * 1000:.1f} ms per step")
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with torch_profile(activities=acts) as prof:
            window(10)
        key = "cuda_time_total" if dev.type == "cuda" else "cpu_time_total"
        with open(profile, "w") as f:
            f.write(prof.key_averages().table(sort_by=key, row_limit=40))
            f.write("\n\n" + prof.key_averages().table(sort_by="cpu_time_total", row_limit=40))


if __name__ == "__main__":
    main()
