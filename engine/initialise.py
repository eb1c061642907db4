"""Stroke initialisation: where strokes start.

``EdgeSaliency`` (the weight-free default) scores pixels by the blurred XDoG line rendition
of the frame inside the subject mask; the score is sharpened with a softmax and starting
points are drawn from it. ``random_strokes`` grows a short random cubic from each start, as
CLIPasso does.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .imageops import composite_on_white, gaussian_blur, xdog_ink


class EdgeSaliency:
    """Saliency from lines and edges of the masked frame; no weights needed."""

    name = "edges"

    def __init__(self, temperature: float = 0.3, blur: float = 2.0):
        self.temperature = temperature
        self.blur = blur

    def __call__(self, frames: Tensor, masks: Tensor | None) -> Tensor:
        """``(B, 3, H, W)`` frames -> ``(B, H, W)`` probabilities summing to 1 per frame."""
        ink = gaussian_blur(xdog_ink(composite_on_white(frames, masks)), self.blur)[:, 0]
        ink = ink / ink.amax((1, 2), keepdim=True).clamp_min(1e-6)
        logits = ink / self.temperature
        if masks is not None:
            inside = masks[:, 0] > 0.5
            empty = ~inside.flatten(1).any(1)                       # no subject: use the frame
            inside = inside | empty[:, None, None]
            logits = logits.masked_fill(~inside, float("-inf"))
        return torch.softmax(logits.flatten(1), 1).view_as(ink)


def sample_starts(saliency: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """Draw ``count`` distinct pixels ``(B, count, 2)`` (x, y at pixel centres) per map."""
    b, h, w = saliency.shape
    flat = saliency.flatten(1)
    available = (flat > 0).sum(1).min().item()
    idx = torch.multinomial(flat, count, replacement=count > available, generator=generator)
    return torch.stack([idx % w, idx // w], -1).to(saliency.dtype) + 0.5


def random_strokes(starts: Tensor, segments: int, spread: float,
                   generator: torch.Generator) -> Tensor:
    """A random cubic path from each start ``(..., 2)`` -> ``(..., 3*segments+1, 2)``.

    Each control point is the previous one plus ``spread * (u - 0.5)`` per coordinate, ``u``
    uniform in [0, 1): CLIPasso's growth with ``spread = 0.05 * canvas`` (up to 5.6 px a step
    on a 224 canvas).
    """
    steps = (torch.rand(starts.shape[:-1] + (3 * segments, 2), generator=generator,
                        device=starts.device, dtype=starts.dtype) - 0.5) * spread
    return torch.cat([starts.unsqueeze(-2), starts.unsqueeze(-2) + steps.cumsum(-2)], -2)
