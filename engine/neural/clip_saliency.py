"""Saliency for the starting points from CLIP ViT-B/32: attention rollout over the visual
transformer's blocks gives a relevance map of the frame; it is multiplied by an XDoG edge map
and the subject mask, then sharpened with a softmax at temperature 0.3 (CLIPasso's start)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..imageops import composite_on_white, gaussian_blur, xdog_ink
from .clip_guidance import CLIP_MEAN, CLIP_STD, load_clip_visual


class ClipSaliency:
    name = "clip-rollout"

    def __init__(self, weights: str, device: torch.device, temperature: float = 0.3):
        self.device = torch.device(device)
        self.visual = load_clip_visual(weights, self.device, "clip-vit-b-32")
        self.temperature = temperature
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)

    @torch.no_grad()
    def relevance(self, images: Tensor) -> Tensor:
        """Attention rollout: ``(B, g, g)`` relevance of each patch for the class token."""
        v = self.visual
        size = v.image_size[0] if isinstance(v.image_size, (tuple, list)) else v.image_size
        x = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        x = v.conv1((x - self.mean) / self.std)                        # (B, D, g, g)
        b, d, g, _ = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([v.class_embedding.to(x.dtype).expand(b, 1, d), x], 1) + v.positional_embedding
        x = v.ln_pre(x)
        n = x.shape[1]
        eye = torch.eye(n, device=x.device, dtype=x.dtype)
        rollout = eye.expand(b, n, n)
        for block in v.transformer.resblocks:
            y = block.ln_1(x)
            _, attention = block.attn(y, y, y, need_weights=True, average_attn_weights=True)
            mixed = 0.5 * attention + 0.5 * eye                           # the residual path
            rollout = (mixed / mixed.sum(-1, keepdim=True)) @ rollout
            x = block(x)
        return rollout[:, 0, 1:].reshape(b, g, g)

    def __call__(self, frames: Tensor, masks: Tensor | None) -> Tensor:
        frames = composite_on_white(frames, masks)
        h, w = frames.shape[-2:]
        rel = F.interpolate(self.relevance(frames)[:, None], size=(h, w), mode="bilinear",
                            align_corners=False)[:, 0]
        rel = rel / rel.flatten(1).amax(1).clamp_min(1e-8)[:, None, None]
        edges = gaussian_blur(xdog_ink(frames), 1.0)[:, 0]
        score = rel * (edges + 0.05)
        if masks is not None:
            score = score * masks[:, 0]
        score = score / score.flatten(1).amax(1).clamp_min(1e-8)[:, None, None]
        logits = score / self.temperature
        if masks is not None:
            inside = masks[:, 0] > 0.5
            inside = inside | ~inside.flatten(1).any(1)[:, None, None]
            logits = logits.masked_fill(~inside, float("-inf"))
        return torch.softmax(logits.flatten(1), 1).view(-1, h, w)
