"""Which masker runs: ``--mask`` and ``--subject`` resolved to one masker, and built. The one
place a masker is chosen (``backends.choose_backends`` asks here for the mask stage)."""
from __future__ import annotations

import os

from ..availability import INSTALL, installed, note_fallback, usable
from ..errors import EngineError
from .files import AlphaMasker, MaskFileMasker, NoMasker
from .trust import TrustedMasker

# ISNet's weight files for ``--mask isnet``, best first (docs/MODELS.md), and ``isnet-small``'s.
ISNET_WEIGHTS = ("isnet-general-use", "isnet-imgly-medium")
ISNET_SMALL_WEIGHTS = ("isnet-imgly-small",)


def choose_masker(mode: str, has_alpha: bool, notes: list | None = None, subject: bool = False) -> str:
    """``auto``: ``alpha`` when the clip has an alpha channel, else ``inspyrenet`` when
    transparent-background and its weights are here, else ``isnet`` when ONNX Runtime and
    ISNet weights are here, else ``none``. Other modes (a mask file's path included) stand.
    With ``--subject`` boxes (``subject``): ``isnet-subject`` (ISNet on a crop around the
    followed subject) when ISNet is usable, else ``box`` (the followed box is the mask)."""
    if mode in ("isnet-subject", "box"):                 # already chosen
        return mode
    if subject:
        if mode not in ("auto", "isnet"):
            raise EngineError(f"--subject picks the subject for the masking network: use it with --mask auto "
                              f"or isnet, not --mask {mode}")
        if mode == "isnet" or (installed("onnxruntime") and isnet_weights() is not None):
            return "isnet-subject"
        note_fallback(notes, "mask", "no ISNet weights, so the followed box itself is the mask: run "
                                     "`dynasketch models download isnet-general-use` (docs/MODELS.md)")
        return "box"
    if mode != "auto":
        return mode
    if has_alpha:
        return "alpha"
    passed_over: list = []
    if usable("mask", "inspyrenet-base", "transparent_background", passed_over):
        return "inspyrenet"
    if not installed("onnxruntime"):
        note_fallback(passed_over, "mask", f"the onnxruntime package is not installed: {INSTALL['onnxruntime']}")
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
    from .. import models

    for name in _isnet_names(mode):
        try:
            return models.require(name)
        except EngineError:
            continue
    note_fallback(notes, "mask", "no ISNet weights: run `dynasketch models download isnet-general-use` (docs/MODELS.md)")
    return None


def _isnet_names(mode: str) -> tuple[str, ...]:
    return ISNET_WEIGHTS if mode == "isnet" else ISNET_SMALL_WEIGHTS


def require_masker_weights(mode: str) -> str | None:
    """For ``--mask isnet`` / ``isnet-small``: the weights' path, or the EngineError saying what
    to do, checked before a run touches its output folder. None for the other modes."""
    if mode not in ("isnet", "isnet-small", "isnet-subject"):
        return None
    mode = "isnet" if mode == "isnet-subject" else mode
    if not installed("onnxruntime"):
        raise EngineError(f"--mask {mode} needs ONNX Runtime: {INSTALL['onnxruntime']}")
    return require_isnet(mode)


def require_isnet(mode: str) -> str:
    """``isnet_weights`` or the EngineError of the file to fix: a damaged one, else the one
    to download."""
    from .. import models

    found = isnet_weights(mode=mode)
    if found is not None:
        return found
    names = _isnet_names(mode)
    present = [n for n in names if os.path.exists(models.path_of(models.lookup(n)))]
    return models.require(present[0] if present else names[0])


def build_masker(mode: str, clip, frame_range, device, mask_start_number: int | None = None,
                 subject: list[str] | None = None, follow_from: tuple | None = None):
    """The masker for ``clip`` (a ``video.VideoSource``). ``none``; ``alpha``: the clip's
    alpha channel; ``inspyrenet`` / ``inspyrenet-fast``: InSPyReNet (base or fast);
    ``isnet`` / ``isnet-small``: ISNet through ONNX Runtime; ``isnet-subject`` / ``box``: the
    subject in the ``subject`` boxes followed (``subject.SubjectMasker``; ``follow_from``: its box
    on the range's first frame, for a resumed run); or a mask file's path (a pattern read from
    ``mask_start_number``). ``auto``: see ``choose_masker``. The networks' masks pass the trust
    check (``trust.TrustedMasker``); a masker's ``notes`` hold its flags by frame index."""
    from .. import models

    mode = choose_masker(mode, clip.info.has_alpha, subject=bool(subject))
    if mode == "none":
        return NoMasker()
    if mode == "alpha":
        return AlphaMasker()
    if mode in ("isnet-subject", "box"):
        from .subject import SubjectMasker

        session_of = None
        if mode == "isnet-subject":
            from .isnet import load_session

            weights, kind = require_masker_weights(mode), getattr(device, "type", str(device))
            session_of = lambda: load_session(weights, kind)          # noqa: E731
        return SubjectMasker(session_of, clip, frame_range, subject or [], follow_from)
    if mode in ("inspyrenet", "inspyrenet-fast"):
        from .inspyrenet import InSPyReNetMasker

        kind = "fast" if mode == "inspyrenet-fast" else "base"
        return TrustedMasker(InSPyReNetMasker(models.require(f"inspyrenet-{kind}"), clip, frame_range, device,
                                              models.cache_home(), kind))
    if mode in ("isnet", "isnet-small"):
        from .isnet import ISNetMasker

        return TrustedMasker(ISNetMasker(require_masker_weights(mode), clip, frame_range, device,
                                         models.cache_home()))
    return MaskFileMasker(mode, clip.info, frame_range, mask_start_number)
