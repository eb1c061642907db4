"""``dynasketch doctor``: which backends and devices are usable here, and why the others are not."""
from __future__ import annotations

import importlib
import os
import platform


def _module(name: str) -> tuple[bool, str]:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken install
        return False, f"not importable ({type(exc).__name__}: {str(exc)[:120]})"
    return True, f"version {getattr(mod, '__version__', '?')}"


def _neural(package: str, model: str) -> tuple[bool, str]:
    """Usable when ``package`` imports and a good copy of ``model`` is in the model folder."""
    from . import models
    from .availability import INSTALL, make_importable

    make_importable(package)
    ok, why = _module(package)
    if not ok:
        return False, f"{package} {why}: {INSTALL[package]}"
    spec = models.MODELS[model]
    path = models.path_of(spec)
    problem = models.check_file(spec, path)
    if problem:
        return False, f"{models.describe(path, problem)}: run `dynasketch models download {model}`"
    return True, f"weights at {path}"


def _isnet() -> tuple[bool, str]:
    """ISNet through ONNX Runtime: the first good file of ``backends.ISNET_WEIGHTS``."""
    from .availability import INSTALL
    from .masks.choose import ISNET_WEIGHTS

    ok, why = _module("onnxruntime")
    if not ok:
        return False, f"onnxruntime {why}: {INSTALL['onnxruntime']}"
    import onnxruntime

    for name in ISNET_WEIGHTS:
        ok, where = _neural("onnxruntime", name)
        if ok:
            return True, f"{where}, ONNX Runtime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
    return False, where


def _auto_mask(mask: dict) -> str:
    """What ``--mask auto`` takes on a clip without alpha here, and why."""
    if mask["inspyrenet"][0]:
        return "inspyrenet on clips without alpha (its weights are here)"
    if mask["isnet"][0]:
        return "isnet on clips without alpha (InSPyReNet is not usable here; ISNet is)"
    return "the whole frame on clips without alpha (no masking network is usable here)"


def _mps(torch) -> tuple[bool, str]:
    """Apple's GPUs: usable, or why not."""
    backend = getattr(torch.backends, "mps", None)
    if backend is None or not backend.is_built():
        return False, "this torch build has no MPS support (Apple silicon Macs only)"
    if not backend.is_available():
        return False, "torch has MPS but finds no usable Apple GPU (it needs macOS 12.3+)"
    fallback = os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK") == "1"
    return True, ("Apple GPU; CLIP in fp32; operators MPS lacks run on the CPU" if fallback
                  else "Apple GPU; set PYTORCH_ENABLE_MPS_FALLBACK=1 (the dynasketch command does)")


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
    report["devices"] = {"cpu": (True, f"{torch.get_num_threads()} threads"), "cuda": (cuda, why),
                         "mps": _mps(torch)}

    av_ok, av_why = _module("av")
    cv_ok, cv_why = _module("cv2")
    ocio_ok, ocio_why = _module("PyOpenColorIO")
    report["decode"] = {"pyav": (av_ok, av_why),
                        "opencolorio": (ocio_ok, "--colorspace: log or ACES footage shown as Blender shows it, "
                                        + ocio_why)}
    report["mask"] = {"alpha": (True, "the clip's alpha channel, when it has one"),
                      "file": (True, "--mask PATH: a mask video or image sequence"),
                      "inspyrenet": _neural("transparent_background", "inspyrenet-base"),
                      "isnet": _isnet()}
    report["mask"]["auto"] = (True, "picks " + _auto_mask(report["mask"]))
    report["tracker"] = {"lucas-kanade": (cv_ok, "OpenCV pyramidal Lucas-Kanade, " + cv_why),
                         "cotracker": _neural("cotracker", "cotracker3-offline")}
    report["guidance"] = {"line-loss": (True, "chamfer distance to the subject's lines, needs no weights"),
                          "clip": _neural("open_clip", "clip-rn101")}
    report["saliency"] = {"edges": (True, "XDoG lines inside the mask, needs no weights"),
                          "clip": _neural("open_clip", "clip-vit-b-32")}
    diffvg_ok, diffvg_why = _module("pydiffvg")
    report["rasterizer"] = {"splat": (True, "built-in differentiable rasterizer (CPU and CUDA)"),
                            "diffvg": (False, "not wired in; " + diffvg_why if not diffvg_ok
                                       else "importable but not wired in")}
    return report
