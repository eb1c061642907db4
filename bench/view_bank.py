"""Does a view bank change what the optimiser converges to? A proxy check of the experiment.

    python bench/view_bank.py [--clip CLIP --mask MASK] [--frame 0] [--steps 300] [--banks 16,64]

CLIPasso draws fresh random warps (perspective + resized crop) for every step. With a view
bank (``ClipGuidance(view_bank=K)``, DYNASKETCH_VIEW_BANK) each frame gets K warps once and
the steps draw from those, which saves encoding the frame's views each step but optimises
against a finite set of warps: the sketch could fit those K and not warps in general. This
optimises one frame's strokes from the same start with fresh views and with banks of each
size, then scores every result on the same held-out warps, none of them in any bank (the
plain pair plus ``views`` x the mean over the held-out warps, the loss's expected value). A
bank that overfits scores worse there than fresh views.

The encoder is RN101 with random weights (none can be downloaded here): its layer2/layer3
features are still image features, but the check says nothing of CLIP's trained semantics.
Defaults to ../shared/clips/soapbox.mp4 with its mask, else the project's sample clip.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from engine.canvas import Letterbox  # noqa: E402
from engine.initialise import EdgeSaliency  # noqa: E402
from engine.neural.clip_guidance import ClipGuidance, warp  # noqa: E402
from engine.optimise import StrokeOptimiser  # noqa: E402
from engine.rasterizer import SplatRasterizer  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.video import FrameRange, MovieFile  # noqa: E402

CLIPS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "clips")


def canvas_frame(clip: str, mask: str | None, index: int, size: int, dev) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frame ``index`` of ``clip`` (and of its mask video) on the square canvas, as tensors."""
    def decoded(path):
        source = MovieFile(path)
        _, rgb, _ = next(source.frames(FrameRange(index, index + 1)))
        return Letterbox(source.info.width, source.info.height, size).fit(rgb)

    image = torch.from_numpy(decoded(clip)).permute(2, 0, 1).float()[None] / 255.0
    if not mask:
        return image.to(dev), None
    alpha = torch.from_numpy(decoded(mask)[..., :1]).permute(2, 0, 1).float()[None] / 255.0
    return image.to(dev), alpha.round().to(dev)


def held_out_loss(judge: ClipGuidance, points: torch.Tensor, opt: StrokeOptimiser, judged) -> float:
    """The loss's expected value over the judge's bank of held-out warps: the plain pair plus
    views x the mean over the bank (``judged``: ``judge.prepare`` of the frame)."""
    with torch.no_grad():
        sketch = opt.render(points)
        plain = judge._distance(judge.features(sketch), judged.plain)
        warps, bank = judged.warps[0], [f[0] for f in judged.bank]
        drawn = judge.features(warp(sketch.expand(len(warps), -1, -1, -1), warps))
        return float(plain.mean() + judge.views * judge._distance(drawn, bank).mean())


def main():
    import open_clip

    ap = argparse.ArgumentParser()
    soapbox = os.path.join(CLIPS, "soapbox.mp4")
    ap.add_argument("--clip", default=soapbox if os.path.exists(soapbox) else None)
    ap.add_argument("--mask", default=None, help="default: soapbox's mask video with soapbox")
    ap.add_argument("--frame", type=int, default=0)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--banks", default="16,64")
    ap.add_argument("--seeds", default="1", help="random draws of the warps, one run each (the spread)")
    ap.add_argument("--held-out", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    clip, mask = args.clip, args.mask
    if clip is None:
        from engine.sample import write_sample

        folder = tempfile.mkdtemp(prefix="dynasketch-bank-")
        clip, mask = os.path.join(folder, "sample.mp4"), os.path.join(folder, "sample.mask.mp4")
        write_sample(clip, mask)
    elif clip == soapbox and mask is None:
        mask = os.path.join(CLIPS, "soapbox.mask.mp4")

    torch.manual_seed(0)
    visual = open_clip.create_model("RN101-quickgelu", pretrained=None).visual
    s = Settings.from_preset("paper", strokes=args.strokes)
    frame, frame_mask = canvas_frame(clip, mask, args.frame, s.canvas, dev)
    judge = ClipGuidance(None, dev, visual=visual, graphs=False, view_bank=args.held_out, seed=12345)
    judged = judge.prepare(frame, frame_mask)                # the held-out warps, in no bank
    probe = StrokeOptimiser(s, SplatRasterizer(), judge, EdgeSaliency(), area=(0, 0, s.canvas, s.canvas))
    init = probe.new_strokes(frame, frame_mask, s.strokes, torch.Generator(dev).manual_seed(0))
    print(f"{os.path.basename(clip)} frame {args.frame}, {args.strokes} strokes, {args.steps} steps "
          f"(lr {s.keyframe_lr}), RN101 random weights, {dev}; held-out warps: {args.held_out}")
    start_score = held_out_loss(judge, init, probe, judged)
    print(f"held-out loss of the starting strokes: {start_score:.4g}")
    print("| views drawn from | seed | loss it optimised (last step) | held-out loss | held-out, % of the start | time |")
    print("|---|---|---|---|---|---|")
    runs = [(bank, int(seed)) for bank in [0] + [int(b) for b in args.banks.split(",") if b]
            for seed in args.seeds.split(",")]
    for bank, seed in runs:
        guidance = ClipGuidance(None, dev, visual=visual, graphs=False, view_bank=bank, seed=seed)
        opt = StrokeOptimiser(s, SplatRasterizer(), guidance, EdgeSaliency(), area=probe.area)
        start = time.perf_counter()
        target = guidance.prepare(frame, frame_mask)
        points, loss = opt._adam(init, args.steps, s.keyframe_lr, lambda x: opt.sketch_loss(x, target))
        took = time.perf_counter() - start
        score = held_out_loss(judge, points, probe, judged)
        label = f"a bank of {guidance.view_bank}" if bank else "fresh warps each step"
        print(f"| {label} | {seed} | {float(loss.mean()):.4g} | {score:.4g} | {100 * score / start_score:.1f}% "
              f"| {took:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
