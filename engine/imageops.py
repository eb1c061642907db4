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


def gaussian_filter(image: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    """Separable Gaussian blur as ``scipy.ndimage.gaussian_filter`` defines it: radius
    ``int(truncate * sigma + 0.5)`` and borders reflected about the edge (``d c b a | a b c d``),
    the reference XDoG's blur (``clipasso_lines``)."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c, h, w = image.shape[1:]

    def edge_reflected(n: int) -> Tensor:         # indices of 0..n-1 padded by radius each side
        i = torch.arange(-radius, n + radius, device=image.device).remainder(2 * n)
        return torch.where(i < n, i, 2 * n - 1 - i)

    padded = image.index_select(2, edge_reflected(h)).index_select(3, edge_reflected(w))
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def otsu_threshold(values: Tensor, bins: int = 256) -> Tensor:
    """Otsu's threshold of each row of ``values`` ``(B, K)``, ``(B,)``: the bin centre that
    maximises the between-class variance of a ``bins``-bin histogram over the row's range,
    as ``skimage.filters.threshold_otsu`` chooses it."""
    low, high = values.amin(1, keepdim=True), values.amax(1, keepdim=True)
    width = ((high - low) / bins).clamp_min(1e-12)
    index = ((values - low) / width).floor().clamp(0, bins - 1).long()
    hist = torch.zeros(values.shape[0], bins, device=values.device, dtype=values.dtype)
    hist.scatter_add_(1, index, torch.ones_like(values))
    centres = low + width * (torch.arange(bins, device=values.device, dtype=values.dtype) + 0.5)
    w1 = hist.cumsum(1)                                                  # weight below each cut
    w2 = hist.flip(1).cumsum(1).flip(1)                                  # ... and above it
    m1 = (hist * centres).cumsum(1) / w1.clamp_min(1e-12)
    m2 = (hist * centres).flip(1).cumsum(1).flip(1) / w2.clamp_min(1e-12)
    between = w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]).square()
    return centres.gather(1, between.argmax(1, keepdim=True))[:, 0]


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


def clipasso_lines(image: Tensor, sigma: float = 0.8, k: float = 10.0, gamma: float = 0.98,
                   phi: float = 200.0, epsilon: float = -0.1) -> Tensor:
    """CLIPasso's binarised XDoG line map of ``image`` ``(B, 3, H, W)`` (the CLIP-normalised
    frame, as the reference applies it) -> ``(B, H, W)``, 1 on lines, 0 elsewhere: the grey
    image (ITU-R 709 luma, as skimage's ``rgb2gray``) blurred at ``sigma`` and ``k * sigma``,
    ``D = G1 - gamma G2``; 1 where ``D < epsilon``, else ``1 + tanh(phi D)``; min-max
    normalised, then the lines are what lies below its Otsu threshold."""
    g = 0.2125 * image[:, 0:1] + 0.7154 * image[:, 1:2] + 0.0721 * image[:, 2:3]
    d = gaussian_filter(g, sigma) - gamma * gaussian_filter(g, sigma * k)
    x = torch.where(d < epsilon, torch.ones_like(d), 1.0 + torch.tanh(phi * d))[:, 0]
    low = x.flatten(1).amin(1)[:, None, None]
    x = (x - low) / (x.flatten(1).amax(1)[:, None, None] - low).clamp_min(1e-12)
    return (x < otsu_threshold(x.flatten(1))[:, None, None]).to(image.dtype)
