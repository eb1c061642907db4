"""Is a neural backend's package installed, and are its weights here? Shared by the stages'
choosers (``backends``, ``masks.choose``) and ``doctor``."""
from __future__ import annotations

import os

from .errors import EngineError

# How to install each neural backend's package (for `dynasketch doctor` and the run's log).
INSTALL = {
    "open_clip": "pip install open-clip-torch==3.3.0",
    "transparent_background": "pip install --no-deps transparent-background==1.3.4 (docs/MODELS.md)",
    "onnxruntime": "pip install onnxruntime onnx (onnxruntime-gpu for CUDA)",
    "cotracker": "install CoTracker from its git repository or set DYNASKETCH_COTRACKER_PATH to a "
                 "checkout (docs/MODELS.md)",
}


def usable(stage: str, model: str, package: str, notes: list | None) -> bool:
    """Are ``package`` and a good copy of ``model`` here? If not, note why for ``stage``."""
    from . import models

    if not installed(package):
        return note_fallback(notes, stage, f"the {package} package is not installed: {INSTALL[package]}")
    try:
        models.require(model)
    except EngineError as exc:
        return note_fallback(notes, stage, str(exc))
    return True


def installed(package: str) -> bool:
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


def note_fallback(notes: list | None, stage: str, why: str) -> bool:
    """Record why ``auto`` took the offline default for ``stage``; returns False."""
    if notes is not None:
        notes.append(f"{stage}: auto took the offline default: {why}")
    return False


