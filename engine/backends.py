"""Which implementation runs each stage: the one place a backend is chosen.

Every stage has an offline default that needs no weights; ``auto`` picks a neural backend
when it is installed with its weights, and the default otherwise. ``choose_backends``
resolves ``auto`` for every stage before anything is built (a resumed run must use the same
backends as the run it continues); where ``auto`` fell back, it adds why to ``notes`` (the
run writes them to its log). The ``build_*`` functions make a stage's backend from its name.
``Settings.backends`` records what ran in ``sketch.json``.
"""
from __future__ import annotations

import os

import torch

from .errors import EngineError
from .initialise import EdgeSaliency
from .losses import ChamferLoss
from .masking import AlphaMasker, MaskFileMasker, NoMasker
from .rasterizer import SplatRasterizer
from .tracking import LucasKanadeTracker

# How to install each neural backend's package (for `dynasketch doctor` and the run's log).
INSTALL = {
    "open_clip": "pip install open-clip-torch==3.3.0",
    "transparent_background": "pip install --no-deps transparent-background==1.3.4 (docs/MODELS.md)",
    "onnxruntime": "pip install onnxruntime onnx (onnxruntime-gpu for CUDA)",
    "cotracker": "install CoTracker from its git repository or set DYNASKETCH_COTRACKER_PATH to a "
                 "checkout (docs/MODELS.md)",
}


def choose_backends(settings, has_alpha: bool, device: torch.device, notes: list | None = None) -> dict:
    """The backend of every stage with ``auto`` resolved, by the names the options take:
    ``{"mask": ..., "tracker": ..., "guidance": ..., "saliency": ...}``."""
    return {"mask": choose_masker(settings.mask, has_alpha, notes),
            "tracker": choose_tracker(settings.tracker, notes),
            "guidance": choose_guidance(settings.guidance, device, notes),
            "saliency": choose_saliency(settings.saliency, notes)}


# ISNet's weight files for ``--mask isnet``, best first (docs/MODELS.md), and ``isnet-small``'s.
ISNET_WEIGHTS = ("isnet-general-use", "isnet-imgly-medium")
ISNET_SMALL_WEIGHTS = ("isnet-imgly-small",)


def choose_masker(mode: str, has_alpha: bool, notes: list | None = None) -> str:
    """``auto``: ``alpha`` when the clip has an alpha channel, else ``inspyrenet`` when
    transparent-background and its weights are here, else ``isnet`` when ONNX Runtime and
    ISNet weights are here, else ``none``. Other modes (a mask file's path included) stand."""
    if mode != "auto":
        return mode
    if has_alpha:
        return "alpha"
    passed_over: list = []
    if _usable("mask", "inspyrenet-base", "transparent_background", passed_over):
        return "inspyrenet"
    if not _installed("onnxruntime"):
        _note(passed_over, "mask", f"the onnxruntime package is not installed: {INSTALL['onnxruntime']}")
    elif isnet_weights(passed_over) is not None:
        if notes is not None:
            notes.extend(n.replace("auto took the offline default", "auto took isnet, not inspyrenet")
                         for n in passed_over)
        return "isnet"
    if notes is not None:
        notes.extend(passed_over)
    return "none"


def isnet_weights(notes: list | None = None, mode: str = "isnet") -> str | None:
    """The path of the best good ISNet file here for ``mode`` (``isnet``: ``ISNET_WEIGHTS`` in
    order; ``isnet-small``: the 8-bit one), or None, noting why."""
    from . import models

    for name in _isnet_names(mode):
        try:
            return models.require(name)
        except EngineError:
            continue
    _note(notes, "mask", "no ISNet weights: run `dynasketch models download isnet-imgly-medium` (docs/MODELS.md)")
    return None


def _isnet_names(mode: str) -> tuple[str, ...]:
    return ISNET_WEIGHTS if mode == "isnet" else ISNET_SMALL_WEIGHTS


def require_masker_weights(mode: str) -> str | None:
    """For ``--mask isnet`` / ``isnet-small``: the weights' path, or the EngineError saying what
    to do, checked before a run touches its output folder. None for the other modes."""
    if mode not in ("isnet", "isnet-small"):
        return None
    if not _installed("onnxruntime"):
        raise EngineError(f"--mask {mode} needs ONNX Runtime: {INSTALL['onnxruntime']}")
    return require_isnet(mode)


def require_isnet(mode: str) -> str:
    """``isnet_weights`` or the EngineError of the file to fix: a damaged one, else the one
    to download."""
    from . import models

    found = isnet_weights(mode=mode)
    if found is not None:
        return found
    names = _isnet_names(mode)
    present = [n for n in names if os.path.exists(models.path_of(models.lookup(n)))]
    return models.require(present[0] if present else names[-1])


def build_masker(mode: str, clip, frame_range, device: torch.device, mask_start_number: int | None = None):
    """The masker for ``clip`` (a ``video.VideoSource``). ``none``; ``alpha``: the clip's
    alpha channel; ``inspyrenet`` / ``inspyrenet-fast``: InSPyReNet (base or fast);
    ``isnet`` / ``isnet-small``: ISNet through ONNX Runtime; or a mask
    file's path (a pattern read from ``mask_start_number``). ``auto``: see ``choose_masker``."""
    from . import models

    mode = choose_masker(mode, clip.info.has_alpha)
    if mode == "none":
        return NoMasker()
    if mode == "alpha":
        return AlphaMasker()
    if mode in ("inspyrenet", "inspyrenet-fast"):
        from .neural.inspyrenet_masker import InSPyReNetMasker

        kind = "fast" if mode == "inspyrenet-fast" else "base"
        return InSPyReNetMasker(models.require(f"inspyrenet-{kind}"), clip, frame_range, device,
                                models.cache_home(), kind)
    if mode in ("isnet", "isnet-small"):
        from .neural.isnet_masker import ISNetMasker

        return ISNetMasker(require_masker_weights(mode), clip, frame_range, device, models.cache_home())
    return MaskFileMasker(mode, clip.info, frame_range, mask_start_number)


def _choose(stage: str, name: str, offline: str, neural: str, model: str, package: str,
            notes: list | None) -> str:
    """``name`` checked; ``auto``: ``neural`` when ``package`` and ``model`` are here, else ``offline``."""
    if name not in ("auto", offline, neural):
        raise EngineError(f"--{stage} {name!r}: choose auto, {offline} or {neural}")
    if name != "auto":
        return name
    return neural if _usable(stage, model, package, notes) else offline


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
        _note(notes, "guidance", "on a CPU CLIP costs seconds a step; ask for it with --guidance clip")
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


def _usable(stage: str, model: str, package: str, notes: list | None) -> bool:
    """Are ``package`` and a good copy of ``model`` here? If not, note why for ``stage``."""
    from . import models

    if not _installed(package):
        return _note(notes, stage, f"the {package} package is not installed: {INSTALL[package]}")
    try:
        models.require(model)
    except EngineError as exc:
        return _note(notes, stage, str(exc))
    return True


def _installed(package: str) -> bool:
    import importlib.util

    make_importable(package)
    return importlib.util.find_spec(package) is not None


def make_importable(package: str) -> None:
    """CoTracker is not on PyPI: a checkout named by $DYNASKETCH_COTRACKER_PATH stands in for
    an installed package (which needs nothing)."""
    import sys

    checkout = os.environ.get("DYNASKETCH_COTRACKER_PATH")
    if package == "cotracker" and checkout and os.path.abspath(checkout) not in sys.path:
        sys.path.insert(0, os.path.abspath(checkout))


def _note(notes: list | None, stage: str, why: str) -> bool:
    """Record why ``auto`` took the offline default for ``stage``; returns False."""
    if notes is not None:
        notes.append(f"{stage}: auto took the offline default: {why}")
    return False


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
