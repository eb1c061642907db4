"""How many operations (on a GPU: kernel launches) an optimisation step makes outside the
CLIP encoder, counted through PyTorch's dispatcher, by the engine file that asks for them.

    python bench/launches.py [--frames 2] [--by-op]

On the H100 the first frame's steps (3 seeds) and the re-initialisations' (small batches) are
bound by the host launching the eager kernels, not by the GPU: there every operation a step
makes costs time, whatever its size. The encoder itself runs as CUDA graphs there (one launch
forward, one backward), so its operations are counted apart. The count does not depend on the
device or on the encoder's size; a small ResNet CLIP with random weights stands in for RN101.
Figures are recorded in docs/MODELS.md.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.checkpoints import SMALL_TEXT, clip_model  # noqa: E402
from engine.initialise import EdgeSaliency  # noqa: E402
from engine.neural.clip_guidance import ClipGuidance  # noqa: E402
from engine.optimise import StrokeOptimiser  # noqa: E402
from engine.rasterizer import SplatRasterizer  # noqa: E402
from engine.settings import Settings  # noqa: E402

ENGINE = os.sep + "engine" + os.sep
# operations that make no kernel: views, and reads of host values
FREE = {"view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "expand", "unsqueeze", "squeeze",
        "t", "transpose", "slice", "select", "alias", "as_strided", "detach", "split", "split_with_sizes",
        "unbind", "unflatten", "flatten", "empty", "empty_strided", "empty_like", "_local_scalar_dense",
        "lift_fresh", "_record_function_enter_new", "_record_function_exit"}


class Count(TorchDispatchMode):
    """Operations by the engine function that asked for them (the innermost engine frame)."""

    def __init__(self):
        super().__init__()
        self.where = collections.Counter()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket).split(".")[-1]
        if name not in FREE:
            ours = [f for f in traceback.extract_stack() if ENGINE in f.filename]
            if any(f.name == "_encode" for f in ours):
                where = "the encoder, forward"
            elif ours:
                where = f"{ours[-1].filename.split(ENGINE)[1]}:{ours[-1].name}"
            else:
                where = "torch"
            self.where[where] += 1
            self.ops[(where, name)] += 1
        return func(*args, **(kwargs or {}))


def per_step(run, steps=(2, 6)) -> tuple[dict, dict]:
    """Operations a step: the difference of two runs of ``steps`` steps, divided out."""
    counts = []
    for n in steps:
        count = Count()
        with count:
            run(n)
        counts.append(count)
    span = steps[1] - steps[0]
    where = {k: (counts[1].where[k] - counts[0].where[k]) / span for k in counts[1].where}
    ops = {k: (counts[1].ops[k] - counts[0].ops[k]) / span for k in counts[1].ops}
    return where, ops


def encoder_backward(guidance: ClipGuidance, batch: int) -> float:
    """Operations of one backward pass through the encoder (any batch: the count is the same)."""
    images = torch.rand(batch, 3, 224, 224, requires_grad=True)
    features = guidance.features(images)
    loss = sum(f.sum() for f in features)
    count = Count()
    with count:
        loss.backward()
    return sum(count.where.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2, help="frames in the window")
    ap.add_argument("--by-op", action="store_true", help="also list the operations themselves")
    args = ap.parse_args()
    dev = torch.device("cpu")
    visual = clip_model(dict(layers=(1, 1, 1, 1), width=16), embed_dim=32, text=SMALL_TEXT).visual
    guidance = ClipGuidance(None, dev, visual=visual, graphs=False)
    s = Settings.from_preset("paper")
    opt = StrokeOptimiser(s, SplatRasterizer(), guidance, EdgeSaliency(), area=(0, 0, 224, 224))
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(args.frames, 3, 224, 224)
    init = opt.new_strokes(frames, None, s.strokes, gen)
    tracks = opt.samples(init)
    seen = torch.ones(tracks.shape[:3], dtype=torch.bool)

    def window(n):
        s.frame_steps = n
        opt.window(frames, None, init, init[0], tracks, seen, torch.arange(s.strokes))

    def first(n):
        s.keyframe_steps = n
        opt.keyframe(frames[:1], None, gen)

    backward = encoder_backward(guidance, 2)
    print(f"{s.strokes} strokes, CLIP guidance with {guidance.views} views; one backward pass through the "
          f"encoder: {backward:.0f} operations (a single graph replay on CUDA)")
    for label, run in ((f"window of {args.frames} frames", window), (f"first frame, {s.seeds} seeds", first)):
        where, ops = per_step(run)
        total = sum(where.values())
        encoder = where.get("the encoder, forward", 0) + backward
        print(f"\n{label}: {total:.0f} operations a step; {total - encoder:.0f} outside the encoder")
        for k, v in sorted(where.items(), key=lambda kv: -kv[1]):
            if v:
                print(f"  {v:6.1f}  {k}")
        if args.by_op:
            for (k, name), v in sorted(ops.items(), key=lambda kv: -kv[1]):
                if v >= 1:
                    print(f"      {v:6.1f}  {k}  {name}")


if __name__ == "__main__":
    main()
