"""Stroke optimisation: Adam on control points through the rasterizer and the losses.

``StrokeOptimiser.keyframe`` sketches one frame from scratch (several seeds at once, the
lowest loss wins). ``StrokeOptimiser.window`` sketches a run of later frames together,
each starting from the previous frame's strokes moved by the tracks, under the guidance
loss plus the track, shape and group terms.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from . import bezier
from .initialise import random_strokes, sample_starts
from .lines import line_strokes
from .losses import (coverage_loss, group_loss, length_loss, overlap_loss, shape_loss, track_distance_loss,
                     track_loss, triplet_shape_loss)
from .settings import Settings


BETAS, EPS = (0.9, 0.999), 1e-8       # torch.optim.Adam's defaults


def adam_step(points: Tensor, moments: tuple[Tensor, Tensor], step: int, lr: float) -> None:
    """One Adam step on ``points`` in place from its ``.grad`` (Kingma and Ba, written as
    torch.optim.Adam does). Written out because ``torch.optim`` imports TorchDynamo on
    first use, a second or two of every run's start-up on a CPU."""
    first, second = moments
    grad = points.grad
    first.lerp_(grad, 1.0 - BETAS[0])
    second.mul_(BETAS[1]).addcmul_(grad, grad, value=1.0 - BETAS[1])
    denom = (second.sqrt() / (1.0 - BETAS[1] ** step) ** 0.5).add_(EPS)
    points.addcdiv_(first, denom, value=-lr / (1.0 - BETAS[0] ** step))


def adam(points: Tensor, steps: int, lr: float, loss_fn: Callable[[Tensor], Tensor],
         should_stop: Callable[[], bool], trainable: Tensor | None = None,
         area: tuple[float, float, float, float] | None = None,
         evaluate: Callable[[Tensor], Tensor] | None = None, every: int = 10) -> tuple[Tensor, Tensor]:
    """Minimise ``loss_fn(points) -> (B,)`` summed over the batch; returns points and losses.

    ``trainable`` ``(B, N)`` bool freezes the strokes where it is False; ``area``
    ``(x0, y0, x1, y1)`` keeps every control point inside that rectangle. With ``evaluate``
    (``(B,)`` losses, no gradients) the iterate is rated every ``every`` steps and at the end,
    and each row's best rated points are returned with their rating (CLIPasso keeps its
    best evaluated iterate); without it, the last points and ``loss_fn`` of them.
    """
    points = points.detach().clone().requires_grad_(True)
    moments = (torch.zeros_like(points), torch.zeros_like(points))
    keep = None if trainable is None else trainable[..., None, None].to(points.dtype)
    best, best_loss = None, None

    def rate() -> None:
        nonlocal best, best_loss
        with torch.no_grad():
            loss = evaluate(points.detach())
            if best is None:
                best, best_loss = points.detach().clone(), loss
                return
            better = loss < best_loss
            best = torch.where(better.view(-1, *[1] * (points.dim() - 1)), points.detach(), best)
            best_loss = torch.minimum(loss, best_loss)

    for step in range(steps):
        if should_stop():
            break
        if evaluate is not None and step % every == 0:
            rate()
        points.grad = None
        loss_fn(points).sum().backward()
        with torch.no_grad():
            if keep is not None:
                points.grad.mul_(keep)
            adam_step(points, moments, step + 1, lr)
            if area is not None:
                points[..., 0].clamp_(area[0], area[2])
                points[..., 1].clamp_(area[1], area[3])
    if evaluate is not None:
        rate()
        return best, best_loss
    with torch.no_grad():
        return points.detach(), loss_fn(points)


class StrokeOptimiser:
    def __init__(self, settings: Settings, rasterizer, guidance, saliency,
                 should_stop: Callable[[], bool] = lambda: False,
                 area: tuple[float, float, float, float] | None = None):
        self.s = settings
        self.area = area                               # the frame on the canvas (no padding)
        self.rasterizer = rasterizer
        self.guidance = guidance
        self.saliency = saliency
        self.should_stop = should_stop
        self.unit = settings.canvas / 224.0            # settings are given for a 224 canvas

    # -- helpers -------------------------------------------------------------------------
    def render(self, points: Tensor) -> Tensor:
        """Black strokes on white, ``(B, 3, C, C)``."""
        width = points.new_full(points.shape[:2], self.s.width * self.unit)   # no host copy
        ink = self.rasterizer(points, width, points.new_ones(points.shape[:2]), self.s.canvas)
        return (1.0 - ink).expand(-1, 3, -1, -1)

    def samples(self, points: Tensor) -> Tensor:
        """The ``M`` tracked points along each stroke, ``(..., N, M, 2)``."""
        return bezier.evaluate_along(points, self.s.track_points)

    @property
    def on_lines(self) -> bool:
        """Whether strokes start on the frame's lines and keep their length (the chamfer
        guidance), rather than grow from salient points (CLIP)."""
        return getattr(self.guidance, "starts_on_lines", False)

    def target(self, frames: Tensor, masks: Tensor | None, lines: list | None, copies: int = 1):
        if self.on_lines:
            return self.guidance.prepare(frames, masks, copies, lines=lines)
        return self.guidance.prepare(frames, masks, copies)

    def lengths(self, points: Tensor) -> Tensor:
        """Each stroke's length along its tracked points, ``(..., N)``, canvas px."""
        return bezier.lengths(points)

    def sketch_loss(self, points: Tensor, target, anchor: Tensor | None = None) -> Tensor:
        """The guidance ``(B,)``; with the chamfer guidance also its priors: each stroke keeps
        its ``anchor`` length, covers the outline and keeps off the others. CLIP has no prior,
        as CLIPasso."""
        loss = self.guidance(self.render(points), target)
        if not self.on_lines:
            return loss
        dense = bezier.evaluate_along(points, 16)
        return (loss + self.s.anchor_weight * length_loss(dense, anchor)
                + self.s.coverage_weight * coverage_loss(dense, target.outline, target.outline_valid,
                                                         self.guidance.cap * self.unit) / self.unit
                + self.s.overlap_weight * overlap_loss(dense, target.reach) / self.unit ** 2)

    def rating(self, target) -> Callable[[Tensor], Tensor] | None:
        """What the keyframe's iterates and seeds are rated by: the guidance on the plain pair
        (CLIP's ``evaluate``, CLIPasso's choice), or None where the guidance has no such rating."""
        evaluate = getattr(self.guidance, "evaluate", None)
        if evaluate is None:
            return None
        return lambda points: evaluate(self.render(points), target)

    def new_strokes(self, frames: Tensor, masks: Tensor | None, count: int,
                    generator: torch.Generator, saliency: Tensor | None = None,
                    lines: list | None = None, keep: Tensor | None = None) -> Tensor:
        """``count`` new strokes per frame, ``(B, count, P, 2)``: on the frame's ``lines``
        where the guidance starts there (the most salient pieces not near-duplicates of the
        strokes in ``keep``, one ``(K, P, 2)`` per frame), else short random strokes grown
        from salient pixels (also for what the lines cannot fill)."""
        saliency = self.saliency(frames, masks) if saliency is None else saliency
        starts = sample_starts(saliency, count, generator)
        out = random_strokes(starts, self.s.segments, 0.05 * self.s.canvas, generator)   # CLIPasso's growth
        if not self.on_lines or lines is None:
            return out
        for b, item in enumerate(lines):
            kept = None if keep is None else keep[b].detach().cpu().double().numpy()
            chosen, _ = line_strokes(item, count, self.s.segments, avoid=kept)
            if len(chosen):
                out[b, :len(chosen)] = torch.from_numpy(chosen).to(out)
        return out

    # -- the two kinds of optimisation ---------------------------------------------------
    def keyframe(self, frame: Tensor, mask: Tensor | None, generator: torch.Generator,
                 seeds: int | None = None, saliency: Tensor | None = None,
                 lines: list | None = None) -> tuple[Tensor, Tensor]:
        """Sketch ``frame`` ``(B, 3, C, C)`` from scratch with ``seeds`` tries per frame.

        ``saliency`` ``(B, C, C)``: the starting-point map, if already computed; ``lines``:
        each frame's ``engine.lines.Lines`` (the chamfer guidance starts there, one try:
        the same lines give the same strokes). Returns the best strokes ``(B, N, P, 2)``
        and their losses ``(B,)``.
        """
        seeds = 1 if self.on_lines else (seeds or self.s.seeds)
        b = frame.shape[0]
        frames = frame.repeat_interleave(seeds, 0)
        masks = None if mask is None else mask.repeat_interleave(seeds, 0)
        if saliency is not None:
            saliency = saliency.repeat_interleave(seeds, 0)
        init = self.new_strokes(frames, masks, self.s.strokes, generator, saliency, lines)
        target = self.target(frame, mask, lines, copies=seeds)    # the seeds share their frame
        anchor = self.lengths(init)
        steps, lr = self.s.keyframe_steps, self.s.keyframe_lr
        if self.on_lines:                # on the lines already: a few gentle steps settle them
            steps, lr = steps // 5, self.s.frame_lr
        points, losses = self._adam(init, steps, lr, lambda x: self.sketch_loss(x, target, anchor),
                                    evaluate=self.rating(target))
        best = losses.view(b, seeds).argmin(1) + torch.arange(b, device=losses.device) * seeds
        return points[best], losses[best]

    def refine(self, frames: Tensor, masks: Tensor | None, init: Tensor,
               trainable: Tensor, lines: list | None = None) -> Tensor:
        """Optimise only the ``trainable`` ``(B, N)`` strokes of ``init`` under guidance
        (each keeps its length in ``init``)."""
        target = self.target(frames, masks, lines)
        anchor = self.lengths(init)
        points, _ = self._adam(init, self.s.reinit_steps, self.s.keyframe_lr,
                               lambda x: self.sketch_loss(x, target, anchor), trainable)
        return points

    def reseed(self, frames: Tensor, masks: Tensor | None, strokes: Tensor, which: Tensor,
               generator: torch.Generator, lines: list | None = None, count: int | None = None) -> Tensor:
        """``strokes`` ``(B, N, P, 2)`` with the ``which`` ``(B, N)`` ones drawn anew (``new_strokes``
        of ``count`` per frame, N by default, avoiding the strokes kept; the new ones take the
        lost ids in order) and refined. Returns ``(B, N, P, 2)``."""
        keep = [s[~w] for s, w in zip(strokes, which)]
        new = self.new_strokes(frames, masks, count or strokes.shape[1], generator, lines=lines, keep=keep)
        fresh = strokes.clone()
        for b in range(len(fresh)):
            fresh[b, which[b]] = new[b, :int(which[b].sum())]
        return self.refine(frames, masks, fresh, trainable=which, lines=lines)

    def window(self, frames: Tensor, masks: Tensor | None, init: Tensor, previous: Tensor,
               tracks: Tensor, visible: Tensor, groups: Tensor,
               restart: Tensor | None = None, lines: list | None = None,
               anchor: Tensor | None = None, trainable: Tensor | None = None,
               steps: int | None = None) -> tuple[Tensor, Tensor]:
        """Sketch ``W`` consecutive frames together.

        frames ``(W, 3, C, C)``, init ``(W, N, P, 2)``, previous ``(N, P, 2)`` (the frame
        before the window), tracks ``(W, N, M, 2)`` with visible ``(W, N, M)``, groups ``(N,)``;
        ``restart`` ``(W, N)`` marks strokes re-initialised on that frame: they are not held
        to their shape on the frame before. ``anchor`` ``(W, N)``: each stroke's length on
        its keyframe (the chamfer guidance keeps it). ``trainable`` ``(W, N)``: False holds a
        stroke where ``init`` put it (a stroke the artist locked, engine/revisions/). ``steps``:
        Adam's steps (``frame_steps`` by default).
        """
        target = self.target(frames, masks, lines)
        anchor = self.lengths(init[:1]).detach() if anchor is None else anchor
        before = self.samples(previous)[None]
        s = self.s
        if self.on_lines:             # squared terms, in 224-canvas px^2, tuned with the chamfer loss
            def temporal(pts, reference):
                return (s.track_weight * track_loss(pts, tracks, visible) + s.shape_weight * shape_loss(pts, reference)
                        + s.group_weight * group_loss(pts, reference, groups)) / self.unit ** 2
            lr = s.frame_lr
        else:                         # DynaSketch's balance with CLIP: distances, in 224-canvas px
            def temporal(pts, reference):
                return (s.track_weight * track_distance_loss(pts, tracks, visible)
                        + s.shape_weight * triplet_shape_loss(pts, reference)) / self.unit \
                    + s.group_weight * group_loss(pts, reference, groups) / self.unit ** 2
            lr = s.keyframe_lr

        def loss(x: Tensor) -> Tensor:
            pts = self.samples(x)
            reference = torch.cat([before, pts[:-1]], 0)
            if restart is not None:
                reference = torch.where(restart[..., None, None], pts.detach(), reference)
            return self.sketch_loss(x, target, anchor) + temporal(pts, reference)

        return self._adam(init, steps or s.frame_steps, lr, loss, trainable)

    def _adam(self, init: Tensor, steps: int, lr: float, loss_fn, trainable: Tensor | None = None,
              evaluate=None):
        """``adam`` in this canvas (``lr`` in 224-canvas px), with a fresh rasterizer plan."""
        forget = getattr(self.rasterizer, "forget_plans", None)
        if forget is not None:           # other strokes than the last run's: plan them anew
            forget()
        return adam(init, steps, lr * self.unit, loss_fn, self.should_stop, trainable, self.area, evaluate)
