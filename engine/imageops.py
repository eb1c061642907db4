"""Small batched, differentiable image operations on ``(B, C, H, W)`` tensors."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflected borders."""
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = image.shape[1]
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def grey(image: Tensor) -> Tensor:
    """Luma of ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)``."""
    return 0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]   # no host copy


def xdog_ink(image: Tensor, sigma: float = 0.8, k: float = 1.6, tau: float = 0.98,
             sharpness: float = 40.0, epsilon: float = -0.005) -> Tensor:
    """Line rendition of an RGB image: eXtended Difference of Gaussians.

    Returns ink ``(B, 1, H, W)`` in [0, 1]: 1 on dark lines and edges, 0 on flat areas.
    """
    g = grey(image)
    dog = gaussian_blur(g, sigma) - tau * gaussian_blur(g, sigma * k)
    return torch.tanh(sharpness * F.relu(epsilon - dog))


def composite_on_white(image: Tensor, mask: Tensor | None) -> Tensor:
    """Subject on white paper: ``image * mask + (1 - mask)``."""
    if mask is None:
        return image
    return image * mask + (1.0 - mask)
