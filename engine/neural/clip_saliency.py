"""Saliency for the starting points from CLIP ViT-B/32, as CLIPasso computes it: the class
token's attention to each patch, averaged over the heads and over the transformer's blocks,
upsampled bicubically and min-max normalised, is multiplied by CLIPasso's binarised XDoG line
map (``imageops.clipasso_lines``) and by the subject mask; a softmax at temperature 0.3 over
the pixels whose score is above zero gives the starting-point probabilities (every other pixel
has probability 0)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..imageops import clipasso_lines, composite_on_white
from .clip_guidance import CLIP_MEAN, CLIP_STD, load_clip_visual


def positive_softmax(score: Tensor, temperature: float) -> Tensor:
    """``(B, H, W)`` scores -> probabilities: a softmax of ``score / temperature`` over the
    pixels whose score is above zero, 0 elsewhere (CLIPasso's start). A map with no positive
    pixel gives every pixel the same probability."""
    flat = score.flatten(1)
    positive = flat > 0
    positive = positive | ~positive.any(1, keepdim=True)
    logits = (flat / temperature).masked_fill(~positive, float("-inf"))
    return torch.softmax(logits, 1).view_as(score)


class ClipSaliency:
    name = "clip-attention"

    def __init__(self, weights: str, device: torch.device, temperature: float = 0.3):
        self.device = torch.device(device)
        self.visual = load_clip_visual(weights, self.device, "clip-vit-b-32")
        self.temperature = temperature
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)

    @torch.no_grad()
    def relevance(self, images: Tensor) -> Tensor:
        """``(B, g, g)``: the class token's attention to each patch, averaged over the heads
        and the blocks (CLIPasso's ``interpret``), for ``images`` ``(B, 3, H, W)`` in [0, 1]."""
        v = self.visual
        size = v.image_size[0] if isinstance(v.image_size, (tuple, list)) else v.image_size
        x = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        x = v.conv1(self.normalise(x))                                  # (B, D, g, g)
        b, d, g, _ = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([v.class_embedding.to(x.dtype).expand(b, 1, d), x], 1) + v.positional_embedding
        x = v.ln_pre(x)
        total = x.new_zeros(b, g * g)
        for block in v.transformer.resblocks:
            y = block.ln_1(x)
            _, attention = block.attn(y, y, y, need_weights=True, average_attn_weights=True)
            total = total + attention[:, 0, 1:]
            x = block(x)
        return (total / len(v.transformer.resblocks)).view(b, g, g)

    def normalise(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std

    def __call__(self, frames: Tensor, masks: Tensor | None) -> Tensor:
        """``(B, 3, H, W)`` frames -> ``(B, H, W)`` starting-point probabilities."""
        frames = composite_on_white(frames, masks)
        h, w = frames.shape[-2:]
        rel = F.interpolate(self.relevance(frames)[:, None], size=(h, w), mode="bicubic",
                            align_corners=False)[:, 0]
        low = rel.flatten(1).amin(1)[:, None, None]
        rel = (rel - low) / (rel.flatten(1).amax(1)[:, None, None] - low).clamp_min(1e-12)
        score = rel * clipasso_lines(self.normalise(frames))
        if masks is not None:
            score = score * (masks[:, 0] > 0.5)
        return positive_softmax(score, self.temperature)
