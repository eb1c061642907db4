"""``dynasketch doctor``: which backends and devices are usable here, and why the others are not."""
from __future__ import annotations

import importlib
import platform


def _module(name: str) -> tuple[bool, str]:
    try:
        mod = importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken install
        return False, f"not importable ({type(exc).__name__}: {str(exc)[:120]})"
    return True, f"version {getattr(mod, '__version__', '?')}"


def diagnose() -> dict:
    import torch

    from . import __version__

    report: dict = {"engine": {"dynasketch": (True, f"version {__version__}, Python {platform.python_version()}"),
                               "torch": (True, f"version {torch.__version__}")}}
    cuda = torch.cuda.is_available()
    if cuda:
        why = f"{torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB"
    elif torch.version.cuda is None:
        why = "this torch build has no CUDA support"
    else:
        why = f"torch is built for CUDA {torch.version.cuda} but finds no usable GPU or driver"
    report["devices"] = {"cpu": (True, f"{torch.get_num_threads()} threads"), "cuda": (cuda, why)}

    av_ok, av_why = _module("av")
    cv_ok, cv_why = _module("cv2")
    report["decode"] = {"pyav": (av_ok, av_why)}
    report["mask"] = {"alpha": (True, "the clip's alpha channel, when it has one"),
                      "file": (True, "--mask PATH: a mask video or image sequence")}
    report["tracker"] = {"lucas-kanade": (cv_ok, "OpenCV pyramidal Lucas-Kanade, " + cv_why)}
    from . import models

    clip_ok, clip_why = _module("open_clip")
    weights = models.path_of(models.MODELS["clip-rn101"])
    problem = models.check_file(models.MODELS["clip-rn101"], weights)
    if clip_ok and problem:
        clip_ok, clip_why = False, f"{weights} is {problem}: run `dynasketch models download clip-rn101`"
    elif clip_ok:
        clip_why = f"RN101 weights at {weights}"
    else:
        clip_why = "open_clip " + clip_why + ": pip install open-clip-torch==3.3.0"
    report["guidance"] = {"line-loss": (True, "multi-scale XDoG line loss, needs no weights"),
                          "clip": (clip_ok, clip_why)}
    diffvg_ok, diffvg_why = _module("pydiffvg")
    report["rasterizer"] = {"splat": (True, "built-in differentiable rasterizer (CPU and CUDA)"),
                            "diffvg": (False, "not wired in; " + diffvg_why if not diffvg_ok
                                       else "importable but not wired in")}
    return report
