"""CLIP checkpoint files with random weights, in the form OpenAI releases them (no weights can be
downloaded here), for the tests and the benchmarks.

OpenAI's ``RN101.pt`` and ``ViT-B-32.pt`` are TorchScript archives of the whole model (image and
text towers) with fp16 weights. ``save_openai_clip`` writes an open_clip model that way, so the
engine's loader reads the same kind of file as a user's download.
"""
from __future__ import annotations

import copy
import warnings

import torch

# the text tower OpenAI's RN101 and ViT-B/32 checkpoints carry (the engine does not use it)
OPENAI_TEXT = dict(context_length=77, vocab_size=49408, width=512, heads=8, layers=12)
SMALL_TEXT = dict(context_length=77, vocab_size=1000, width=64, heads=1, layers=1)
RN101 = dict(layers=(3, 4, 23, 3), width=64)
VIT_B_32 = dict(layers=12, width=768, patch_size=32)


def clip_model(vision: dict, embed_dim: int = 512, text: dict = OPENAI_TEXT, seed: int = 0):
    """An open_clip CLIP with OpenAI's QuickGELU, random weights from ``seed``."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    return CLIP(embed_dim=embed_dim, vision_cfg=CLIPVisionCfg(image_size=224, **vision),
                text_cfg=CLIPTextCfg(**text), quick_gelu=True).eval()


def save_openai_clip(model, path: str) -> str:
    """Write ``model`` as OpenAI releases CLIP: a traced TorchScript archive, weights in fp16
    (``model`` itself is left as it was)."""
    model = copy.deepcopy(model)
    mask = model._buffers.pop("attn_mask")       # open_clip's causal mask: a constant in OpenAI's
    object.__setattr__(model, "attn_mask", mask)
    image = torch.zeros(1, 3, 224, 224)
    text = torch.zeros(1, mask.shape[0], dtype=torch.long)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # the tracer's notes on Python values
        traced = torch.jit.trace(model, (image, text), check_trace=False)
    traced.half().save(path)
    return path
