"""Which implementation runs each stage: the one place a backend is chosen.

Every stage has an offline default that needs no weights; ``auto`` picks a neural backend
when it is installed with its weights, and the default otherwise. ``choose_backends``
resolves ``auto`` for every stage before anything is built (a resumed run must use the same
backends as the run it continues); where ``auto`` fell back, it adds why to ``notes`` (the
run writes them to its log). The ``build_*`` functions make a stage's backend from its name;
the mask stage's are in ``masks.choose``.
``Settings.backends`` records what ran in ``sketch.json``.
"""
from __future__ import annotations

import torch

from .availability import note_fallback, usable
from .errors import EngineError
from .initialise import EdgeSaliency
from .losses import ChamferLoss
from .masks.choose import choose_masker
from .rasterizer import SplatRasterizer
from .tracking import LucasKanadeTracker

def choose_backends(settings, has_alpha: bool, device: torch.device, notes: list | None = None) -> dict:
    """The backend of every stage with ``auto`` resolved, by the names the options take:
    ``{"mask": ..., "tracker": ..., "guidance": ..., "saliency": ...}``."""
    return {"mask": choose_masker(settings.mask, has_alpha, notes, bool(settings.subject)),
            "tracker": choose_tracker(settings.tracker, notes),
            "guidance": choose_guidance(settings.guidance, device, notes),
            "saliency": choose_saliency(settings.saliency, notes)}


def _choose(stage: str, name: str, offline: str, neural: str, model: str, package: str,
            notes: list | None) -> str:
    """``name`` checked; ``auto``: ``neural`` when ``package`` and ``model`` are here, else ``offline``."""
    if name not in ("auto", offline, neural):
        raise EngineError(f"--{stage} {name!r}: choose auto, {offline} or {neural}")
    if name != "auto":
        return name
    return neural if usable(stage, model, package, notes) else offline


def choose_tracker(name: str, notes: list | None = None) -> str:
    """``auto``: ``cotracker`` when it and its weights are here, else ``lucas-kanade``."""
    return _choose("tracker", name, "lucas-kanade", "cotracker", "cotracker3-offline", "cotracker", notes)


def build_tracker(name: str, device: torch.device):
    """``lucas-kanade``: OpenCV, no weights. ``cotracker``: CoTracker3 (installed from its
    repository, or a checkout in $DYNASKETCH_COTRACKER_PATH). ``auto``: see ``choose_tracker``."""
    from . import models

    if choose_tracker(name) == "lucas-kanade":
        return LucasKanadeTracker()
    from .neural.cotracker_tracker import CoTrackerTracker

    return CoTrackerTracker(models.require("cotracker3-offline"), device)


def choose_guidance(name: str, device: torch.device, notes: list | None = None) -> str:
    """``auto``: ``clip`` on a CUDA device when open_clip and good RN101 weights are here,
    else ``line`` (on a CPU, CLIP costs seconds per frame and step: ask for it with ``clip``)."""
    name = "line" if name == "line-loss" else name
    if name == "auto" and device.type != "cuda":
        note_fallback(notes, "guidance", "on a CPU CLIP costs seconds a step; ask for it with --guidance clip")
        return "line"
    return _choose("guidance", name, "line", "clip", "clip-rn101", "open_clip", notes)


def build_guidance(name: str, device: torch.device):
    """``line``: the weight-free ChamferLoss (ink on the frame's lines). ``clip``: CLIPasso's loss (RN101 weights needed).
    ``auto``: see ``choose_guidance``."""
    from . import models

    if choose_guidance(name, device) == "line":
        return ChamferLoss()
    from .neural.clip_guidance import ClipGuidance

    return ClipGuidance(models.require("clip-rn101"), device)


def choose_saliency(name: str, notes: list | None = None) -> str:
    """``auto``: ``clip`` when open_clip and the ViT-B/32 weights are here, else ``edges``."""
    return _choose("saliency", name, "edges", "clip", "clip-vit-b-32", "open_clip", notes)


def build_saliency(name: str, device: torch.device):
    """``edges``: XDoG lines in the mask. ``clip``: ViT-B/32 class-token attention (CLIPasso) x binarised XDoG lines x mask.
    ``auto``: see ``choose_saliency``."""
    from . import models

    if choose_saliency(name) == "edges":
        return EdgeSaliency()
    from .neural.clip_saliency import ClipSaliency

    return ClipSaliency(models.require("clip-vit-b-32"), device)


def build_rasterizer(device: torch.device | None = None):
    """The splat rasterizer; on CUDA it plans its pieces every 20 calls instead of measuring
    them each call, which would make the host wait for the GPU every optimisation step."""
    cuda = device is not None and device.type == "cuda"
    return SplatRasterizer(replan_every=20 if cuda else 0)
